"""Prompts and answer parsing shared by every namer.

Naming and disambiguation prompts are toponymy's own (``toponymy.templates``); the naming
answer additionally asks for a one-sentence ``topic_description``, placed between
``topic_name`` and ``topic_specificity`` so toponymy's ``GET_TOPIC_NAME_REGEX`` still matches.
The audit adds a judge prompt and a relabel note.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any, Optional

from toponymy.llm_wrappers import llm_output_to_result
from toponymy.templates import GET_TOPIC_CLUSTER_NAMES_REGEX, GET_TOPIC_NAME_REGEX, PROMPT_TEMPLATES

NAME_FORMAT = '{"topic_name":<NAME>, "topic_specificity":<SCORE>}'
NAME_FORMAT_WITH_DESCRIPTION = '{"topic_name":<NAME>, "topic_description":<DESCRIPTION>, "topic_specificity":<SCORE>}'
DESCRIPTION_HELP = (
    "\nDESCRIPTION is one plain sentence (at most 30 words) saying what this group's {kind} are about."
)
JUDGE_REGEX = r'\{\s*"score":\s*-?[\d.]+\s*(?:,\s*"reason":\s*".*?")?\s*\}'
JUDGE_MARK = "[label-audit]"


class _DescribedTemplate:
    """A toponymy layer template whose answer format also asks for a description."""

    def __init__(self, template: Any, explain: bool):
        self.template = template
        self.explain = explain

    def render(self, **params: Any) -> str:
        text = self.template.render(**params)
        if NAME_FORMAT not in text:
            raise RuntimeError("toponymy's prompt template changed: its answer format was not found")
        text = text.replace(NAME_FORMAT, NAME_FORMAT_WITH_DESCRIPTION)
        if self.explain:
            text += DESCRIPTION_HELP.format(kind=params.get("document_type", "objects"))
        return text


def label_prompt_templates() -> dict:
    """toponymy's PROMPT_TEMPLATES with a description added to the naming answer."""
    templates = copy.copy(PROMPT_TEMPLATES)
    layer = dict(PROMPT_TEMPLATES["layer"])
    layer["system"] = _DescribedTemplate(layer["system"], explain=True)
    layer["user"] = _DescribedTemplate(layer["user"], explain=False)
    layer["combined"] = _DescribedTemplate(layer["combined"], explain=True)
    templates["layer"] = layer
    return templates


#: a naming prompt's extra entry (beside its renderings): [name, size] of each subtopic it lists.
#: toponymy's text names the subtopics but not how many tweets each holds; the offline namer
#: weighs a parent's candidate names by it. API namers send only the renderings.
SUBTOPIC_SIZES = "subtopic_sizes"


def with_subtopic_sizes(prompt: Any, layer: int, cluster: int, topic_names: list, cluster_tree: Optional[dict],
                        layer_sizes: list) -> Any:
    """``prompt`` (a toponymy naming prompt for ``cluster`` of ``layer``) with the names and sizes of
    the cluster's subtopics in the cluster tree under :data:`SUBTOPIC_SIZES`; other prompts unchanged."""
    if not isinstance(prompt, dict) or not cluster_tree:
        return prompt
    kids = [(int(lay), int(k)) for lay, k in cluster_tree.get((layer, cluster), [])]
    subtopics = [[topic_names[lay][k], int(layer_sizes[lay][k])] for lay, k in kids
                 if lay < len(topic_names) and k < len(topic_names[lay]) and topic_names[lay][k]]
    if subtopics:
        prompt[SUBTOPIC_SIZES] = subtopics
    return prompt


def prompt_key(prompt: Any) -> str:
    """Identity of a prompt (all its renderings)."""
    if isinstance(prompt, dict):
        text = "\x00".join(str(prompt.get(k, "")) for k in ("system", "user", "combined"))
    else:
        text = str(prompt)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def prompt_kind(prompt: dict) -> str:
    """'judge', 'disambiguate' or 'name' — which answer format the prompt asks for."""
    text = f"{prompt.get('system', '')}\n{prompt.get('combined', '')}"
    if JUDGE_MARK in text:
        return "judge"
    if "new_topic_name_mapping" in text:
        return "disambiguate"
    return "name"


def _as_score(value: Any, what: str) -> float:
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not a number") from None
    if score != score:
        raise ValueError(f"{what} is NaN")
    return min(1.0, max(0.0, score))


def parse_answer(kind: str, text: str) -> dict:
    """Parse a model's answer; raises ValueError when it is not the JSON the prompt asked for."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty answer")
    regex = {"name": GET_TOPIC_NAME_REGEX, "disambiguate": GET_TOPIC_CLUSTER_NAMES_REGEX,
             "judge": JUDGE_REGEX}[kind]
    try:
        data = llm_output_to_result(text, regex)
    except IndexError:
        raise ValueError("no JSON object of the requested shape in the answer") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg})") from None
    if kind == "name":
        name = data.get("topic_name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("topic_name is missing or empty")
        desc = data.get("topic_description")
        return {"topic_name": name.strip(),
                "topic_description": desc.strip() if isinstance(desc, str) else None,
                "topic_specificity": _as_score(data.get("topic_specificity"), "topic_specificity")}
    if kind == "disambiguate":
        mapping = data.get("new_topic_name_mapping")
        if not isinstance(mapping, dict) or not mapping:
            raise ValueError("new_topic_name_mapping is missing or empty")
        names = [str(v).strip() for v in mapping.values()]
        if any(not n for n in names):
            raise ValueError("an empty new topic name")
        specs = data.get("topic_specificities")
        specs = specs if isinstance(specs, list) else []
        return {"names": names,
                "specificities": [_as_score(s, "topic_specificity") for s in specs][: len(names)]}
    score = _as_score(data.get("score"), "score")
    reason = data.get("reason")
    return {"score": score, "reason": reason if isinstance(reason, str) else ""}


def judge_prompt(label: str, description: Optional[str], texts: list[str], object_description: str,
                 corpus_description: str) -> dict:
    """Ask how well a label describes a sample of its cluster (answer: {"score", "reason"})."""
    system = (
        f"{JUDGE_MARK} You audit topic labels of groups of {object_description} from {corpus_description}.\n"
        f"Given a label and a random sample of the group's {object_description}, judge how well the label "
        "describes the sample: 1.0 = it names what nearly all of them are about, 0.0 = unrelated or generic.\n"
        'Respond only with JSON: {"score": <SCORE>, "reason": "<one short sentence>"}'
    )
    lines = [f'Label: "{label}"']
    if description:
        lines.append(f"Description: {description}")
    lines.append(f"Sample {object_description}:")
    lines += [f'    * "{t}"' for t in texts]
    lines.append('Respond with {"score": <SCORE>, "reason": "..."} only.')
    user = "\n".join(lines)
    return {"system": system, "user": user, "combined": f"{system}\n\n{user}"}


def with_relabel_note(prompt: dict, old_label: str, score: float, reason: str) -> dict:
    """A naming prompt plus why the previous label was rejected."""
    note = (f'\nA previous name for this group, "{old_label}", was judged a poor fit (score {score:.2f}'
            f"{': ' + reason if reason else ''}). Give a name that fits the sample above better.\n")
    out = dict(prompt)
    out["user"] = f"{prompt.get('user', '')}{note}"
    out["combined"] = f"{prompt.get('combined', '')}{note}"
    return out


# ----------------------------------------------------------------- reading prompts (offline namer)

_KEYWORDS_RE = re.compile(r"^\s*-\s*Keywords for this group include:\s*(.*)$", re.M)
_EXEMPLAR_RE = re.compile(r'^\s*\*\s?"(.*?)"\s*$', re.M)
_TOPIC_HEADER_RE = re.compile(r'^"(\d+)\. (.*)":\s*$', re.M)
_LABEL_RE = re.compile(r'^Label: "(.*)"$', re.M)


def read_naming_prompt(user: str) -> dict:
    """Keyphrases and exemplar texts shown in a toponymy naming prompt."""
    match = _KEYWORDS_RE.search(user)
    keywords = [k.strip() for k in match.group(1).split(", ") if k.strip()] if match else []
    return {"keywords": keywords, "exemplars": _EXEMPLAR_RE.findall(user)}


def read_disambiguation_prompt(user: str) -> list[dict]:
    """Per listed topic: its number, old name, keyphrases and exemplars."""
    headers = list(_TOPIC_HEADER_RE.finditer(user))
    topics = []
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(user)
        body = user[header.end():end]
        topics.append({"index": int(header.group(1)), "name": header.group(2), **read_naming_prompt(body)})
    return topics


def read_judge_prompt(user: str) -> dict:
    match = _LABEL_RE.search(user)
    return {"label": match.group(1) if match else "", "texts": _EXEMPLAR_RE.findall(user)}
