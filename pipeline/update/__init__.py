"""Growing archives: merge a newer archive into an existing dataset, keeping the curation and doing only new work.

``update_dataset`` (:mod:`pipeline.update.run`) is what ``tweetscope update`` and the studio call.
"""
