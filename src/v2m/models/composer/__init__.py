"""The offline composer: symbolic music from the video analysis, rendered with a GM soundfont.

:class:`Composer` chooses its soundfont once (:func:`.sound.choose_soundfont`); ``warnings``
holds what its caller should tell the user once (the small fallback soundfont)."""

from __future__ import annotations

from ..base import GeneratedMusic, GenerationRequest
from ..cards import MODELS, ComposerOptions
from .compose import compose
from .score import Score, Stems
from .sound import choose_soundfont, find_soundfont


class Composer:
    """The default generator: runs offline on a CPU; writes a MIDI score with its audio, which
    is the score's :class:`Stems` (each part in a temporary file in the request's ``scratch``
    folder; the caller closes the music when done)."""

    card = MODELS["composer"]
    name = card.name
    embedder = None  # it reads no CLIP semantics

    def __init__(self, options: ComposerOptions = ComposerOptions(), sample_rate: int = 44100):
        self.soundfont, warning = choose_soundfont(options.soundfont)
        self.warnings = [warning] if warning else []
        self.style = options.style
        self.sample_rate = sample_rate

    def score(self, request: GenerationRequest) -> Score:
        return compose(request.analysis, request.duration, request.controls, request.seed, style=self.style,
                       speech=request.speech)

    def generate(self, request: GenerationRequest) -> GeneratedMusic:
        score = self.score(request)
        audio = score.render_stems(self.soundfont, self.sample_rate, folder=request.scratch)
        grid = score.grid
        inside = (grid.times >= 0) & (grid.times <= request.duration)
        return GeneratedMusic(
            audio=audio,
            sample_rate=self.sample_rate,
            beats=grid.times[inside],
            downbeats=grid.times[inside & grid.is_downbeat],
            midi=score.to_midi(),
            info={**score.info, "soundfont": self.soundfont},
        )


__all__ = ["Composer", "Score", "Stems", "compose", "find_soundfont"]
