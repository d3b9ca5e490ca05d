#!/usr/bin/env python3
"""wordcount: a Corral worker plugin that counts the words of its payload.

The payload is the text, or {"text": "...", "delay": 0.1} to pause after
each word (seconds; cancellable). The result is a JSON object of counts."""
import collections

import corral_plugin as corral


class WordCount:
    info = corral.Info(name="wordcount", version="1.0.0", description="counts the words of the payload")

    def run(self, job, reporter):
        try:
            spec = job.json() if job.payload.startswith(b"{") else {"text": job.text()}
            words, delay = spec["text"].split(), float(spec.get("delay", 0))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise corral.NonRetryable(f'payload must be text or {{"text": ..., "delay": ...}}: {e!r}')
        if not words:
            raise corral.NonRetryable("nothing to count: the payload has no words")
        reporter.log(f"counting {len(words)} words")
        counts = collections.Counter()
        for n, word in enumerate(words, 1):
            if job.cancelled.wait(delay):
                raise corral.Cancelled(f"cancelled after {n - 1} of {len(words)} words")
            counts[word.lower()] += 1
            reporter.progress(100 * n // len(words), f"{n}/{len(words)} words")
        return dict(counts.most_common())


if __name__ == "__main__":
    corral.serve(WordCount())
