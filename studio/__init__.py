"""Tweetscope Studio: the Panel web app (views over the pipeline, background jobs)."""
