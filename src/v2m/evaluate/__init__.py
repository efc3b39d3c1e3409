"""Evaluation of generated music: the field's metrics (:mod:`.metrics`)."""
