"""The labels stage's knobs, declared once (studio widget, CLI flag, sidecar ``params``)."""

from __future__ import annotations

import param

from pipeline.core.config import StageConfig

PROVIDERS = ["auto", "offline", "openai", "anthropic"]
DEFAULT_MODELS = {
    "offline": "keyphrase-ctfidf-v2",  # v2: c-TF-IDF phrases, no handle/number/URL/date names
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5-20251001",
}


class LabelConfig(StageConfig):
    """Hierarchical topic labels with toponymy (naming, hierarchy, audit loop)."""

    provider = param.Selector(
        default="auto", objects=PROVIDERS,
        doc="Namer: openai / anthropic (keys from OPENAI_API_KEY / ANTHROPIC_API_KEY), offline "
            "(deterministic keyphrase namer), or auto (openai if its key is set, else anthropic, "
            "else offline)")
    model = param.String(
        default="", doc="Model name; empty = the provider's default (gpt-4o-mini, claude-haiku-4-5-20251001)")
    base_url = param.String(
        default="", doc="API base URL; empty = OPENAI_BASE_URL / ANTHROPIC_BASE_URL from the environment, "
                        "else the provider's public endpoint")
    max_concurrency = param.Integer(default=8, bounds=(1, 64), doc="Parallel LLM requests")
    timeout = param.Number(default=60.0, bounds=(1.0, 600.0), doc="Seconds before one LLM request times out")
    max_retries = param.Integer(
        default=2, bounds=(0, 10),
        doc="Retries of one LLM request after a timeout, rate limit, server error or unparseable answer")
    retry_backoff = param.Number(default=1.0, bounds=(0.0, 60.0), doc="Seconds of the first retry wait (doubles)")
    temperature = param.Number(default=0.4, bounds=(0.0, 2.0), doc="Sampling temperature of the namer")

    object_description = param.String(default="tweets", doc="What the objects are, for the prompts")
    corpus_description = param.String(
        default="one person's Twitter/X archive", doc="What the collection is, for the prompts")

    min_exemplars = param.Integer(default=4, bounds=(1, 64), doc="Exemplar tweets shown for the smallest clusters")
    max_exemplars = param.Integer(default=16, bounds=(1, 128), doc="Exemplar tweets shown for the largest clusters")
    min_keyphrases = param.Integer(default=8, bounds=(1, 64), doc="Keyphrases shown for the smallest clusters")
    max_keyphrases = param.Integer(default=24, bounds=(1, 128), doc="Keyphrases shown for the largest clusters")
    exemplar_method = param.Selector(
        default="central", objects=["central", "facility_location", "saturated_coverage", "random"],
        doc="toponymy's exemplar selection")
    keyphrase_method = param.Selector(
        default="information_weighted", objects=["information_weighted", "central", "bm25"],
        doc="toponymy's keyphrase selection")
    keyphrase_max_features = param.Integer(
        default=20_000, bounds=(100, 200_000),
        doc="Largest keyphrase vocabulary (each keyphrase is embedded); used: max(4000, 24 × clusters) up to this")

    branching = param.Number(
        default=4.0, bounds=(1.5, 50.0), doc="Each coarser layer has about this many times fewer clusters")
    min_top_clusters = param.Integer(
        default=3, bounds=(2, 100), doc="No coarser layer is made with fewer clusters than this")
    max_layers = param.Integer(default=5, bounds=(1, 12), doc="Most layers, layer 0 included")

    audit_rounds = param.Integer(
        default=2, bounds=(0, 10), doc="Audit rounds: judge labels, relabel the weak ones (0 = no audit)")
    audit_threshold = param.Number(
        default=0.5, bounds=(0.0, 1.0), doc="Labels scoring below this are relabelled")
    audit_sample_size = param.Integer(
        default=20, bounds=(3, 200), doc="Tweets of a cluster shown to the judge")
    audit_layers = param.Integer(
        default=12, bounds=(1, 12), doc="Audit the finest this-many layers (layer 0 first; 12 = all)")
    seed = param.Integer(default=42, doc="Seed of every random sample (audit, relabel contrast)")
