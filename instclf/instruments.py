"""Where the embedded dataset's instruments come from: soundfonts and the General MIDI table.

One instrument is one preset of one soundfont. Its NSynth family, its NSynth source and the
pitch range it is played over all follow from its General MIDI program, through
:data:`GM_PROGRAMS`, the one table to read or change. Used by notebook 01 and by
:mod:`instclf.render`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import InstclfError

SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/soundfonts"))


@dataclass(frozen=True)
class Soundfont:
    key: str
    filename: str
    debian_package: str
    source: str | None = None  # overrides the table's source (an FM soundfont is synthetic)
    shares_material_with: str | None = None  # another soundfont its samples derive from

    @property
    def lineage(self) -> str:
        """Soundfonts that share sound material form one lineage (named by the oldest)."""
        return self.shares_material_with or self.key


SOUNDFONTS = {
    sf.key: sf
    for sf in (
        Soundfont("FluidR3_GM", "FluidR3_GM.sf2", "fluid-soundfont-gm"),
        Soundfont(
            "MuseScore_General", "MuseScore_General_Full.sf2",
            "musescore-general-soundfont-lossless", shares_material_with="FluidR3_GM",
        ),
        Soundfont("TimGM6mb", "TimGM6mb.sf2", "timgm6mb-soundfont"),
        Soundfont("sf_GMbank", "sf_GMbank.sf2", "csound-soundfont"),
        Soundfont("OPL3_FM", "OPL-3_FM_128M.sf2", "opl3-soundfont", source="synthetic"),
    )
}

# General MIDI programs (0-127) -> NSynth family, NSynth source, playable MIDI pitch range.
# Programs not listed (timpani, orchestra hit, pads, effects, percussion, sound effects)
# have no NSynth family and are not rendered.
#  first last  family        source        low high  GM programs
GM_TABLE = """
     0    1  keyboard      acoustic       21  108  acoustic grand, bright piano
     2    2  keyboard      electronic     21  108  electric grand
     3    3  keyboard      acoustic       21  108  honky-tonk piano
     4    5  keyboard      electronic     28  103  electric pianos
     6    6  keyboard      acoustic       29   89  harpsichord
     7    7  keyboard      electronic     29   89  clavinet
     8    8  keyboard      acoustic       60  108  celesta
     9    9  mallet        acoustic       79  108  glockenspiel
    10   10  mallet        acoustic       60   96  music box
    11   11  mallet        acoustic       53   89  vibraphone
    12   12  mallet        acoustic       45   96  marimba
    13   13  mallet        acoustic       65  108  xylophone
    14   14  mallet        acoustic       60   77  tubular bells
    15   15  mallet        acoustic       48   86  dulcimer
    16   18  organ         electronic     36   96  drawbar, percussive, rock organ
    19   20  organ         acoustic       24   96  church organ, reed organ
    21   23  reed          acoustic       41   89  accordion, harmonica, tango accordion
    24   25  guitar        acoustic       40   84  nylon and steel acoustic guitar
    26   31  guitar        electronic     40   86  electric guitars
    32   32  bass          acoustic       28   67  acoustic bass
    33   37  bass          electronic     28   67  electric basses
    38   39  bass          synthetic      24   60  synth basses
    40   40  string        acoustic       55  103  violin
    41   41  string        acoustic       48   88  viola
    42   42  string        acoustic       36   76  cello
    43   43  string        acoustic       28   67  contrabass
    44   45  string        acoustic       28   96  tremolo, pizzicato strings
    46   46  string        acoustic       24  103  orchestral harp
    48   49  string        acoustic       28   96  string ensembles
    50   51  string        synthetic      36   96  synth strings
    52   53  vocal         acoustic       48   79  choir aahs, voice oohs
    54   54  vocal         synthetic      48   84  synth voice
    56   56  brass         acoustic       54   86  trumpet
    57   57  brass         acoustic       40   72  trombone
    58   58  brass         acoustic       28   58  tuba
    59   59  brass         acoustic       54   82  muted trumpet
    60   60  brass         acoustic       34   77  french horn
    61   61  brass         acoustic       36   84  brass section
    62   63  brass         synthetic      36   84  synth brass
    64   64  reed          acoustic       56   88  soprano sax
    65   65  reed          acoustic       49   81  alto sax
    66   66  reed          acoustic       44   76  tenor sax
    67   67  reed          acoustic       36   69  baritone sax
    68   68  reed          acoustic       58   91  oboe
    69   69  reed          acoustic       52   81  english horn
    70   70  reed          acoustic       34   72  bassoon
    71   71  reed          acoustic       50   91  clarinet
    72   72  flute         acoustic       74  108  piccolo
    73   75  flute         acoustic       60   96  flute, recorder, pan flute
    76   76  flute         acoustic       60   84  blown bottle
    77   77  flute         acoustic       55   84  shakuhachi
    78   78  flute         acoustic       60   96  whistle
    79   79  flute         acoustic       60   84  ocarina
    80   87  synth_lead    synthetic      36   96  synth leads
   104  104  guitar        acoustic       48   77  sitar
   105  105  guitar        acoustic       48   84  banjo
   106  106  guitar        acoustic       50   79  shamisen
   107  107  string        acoustic       55   90  koto
   108  108  mallet        acoustic       60   96  kalimba
   109  109  reed          acoustic       55   77  bagpipe
   110  110  string        acoustic       55   96  fiddle
   111  111  reed          acoustic       60   88  shanai
   112  112  mallet        acoustic       72  108  tinkle bell
   114  114  mallet        acoustic       52   76  steel drums
"""


@dataclass(frozen=True)
class Program:
    family: str
    source: str
    low: int
    high: int
    description: str


def _parse_gm_table(text: str) -> dict[int, Program]:
    programs = {}
    for line in text.strip().splitlines():
        first, last, family, source, low, high, description = line.split(maxsplit=6)
        for program in range(int(first), int(last) + 1):
            programs[program] = Program(family, source, int(low), int(high), description)
    return programs


GM_PROGRAMS: dict[int, Program] = _parse_gm_table(GM_TABLE)

# Banks 0-126 hold General MIDI programs and their variations; 127 is an MT-32 set in
# sf_GMbank (other numbering) and 128 is percussion.
MELODIC_BANKS = range(0, 127)


def soundfont_path(key: str) -> Path:
    """The file of soundfont ``key``; a clear error naming the package if it is missing."""
    if key not in SOUNDFONTS:
        raise InstclfError(f"unknown soundfont {key!r}; known: {', '.join(SOUNDFONTS)}")
    soundfont = SOUNDFONTS[key]
    dirs = [Path(d) for d in os.environ.get("INSTCLF_SOUNDFONT_DIR", "").split(":") if d]
    for folder in (*dirs, *SOUNDFONT_DIRS):
        path = folder / soundfont.filename
        if path.is_file():
            return path
    raise InstclfError(
        f"soundfont {soundfont.filename} not found in {', '.join(map(str, SOUNDFONT_DIRS))}; "
        f"install it with: sudo apt-get install {soundfont.debian_package} "
        "(or set INSTCLF_SOUNDFONT_DIR to the folder that holds it)"
    )


def pitch_range(program: int) -> range:
    """The MIDI pitches rendered for a General MIDI program (used by notebook 01)."""
    entry = GM_PROGRAMS[program]
    return range(entry.low, entry.high + 1)
