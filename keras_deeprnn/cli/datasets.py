"""`keras-deeprnn datasets`: the built-in music data sets."""

from keras_deeprnn.data import cache as music_cache
from keras_deeprnn.data import catalogue
from keras_deeprnn.tasks.paper import PAPER_MUSIC_COLUMNS


def add_parser(commands):
    listing = commands.add_parser("datasets", help="list the built-in music data sets",
                                  description="List the built-in music data sets.")
    listing.set_defaults(run=run)


def run(args):
    cache = music_cache._cache_root(None)
    print(f"Built-in music data sets (built from the music21 corpus on first use, "
          f"cached in {cache}):\n")
    for name, description in catalogue.MUSIC_DATASETS.items():
        column = PAPER_MUSIC_COLUMNS[name][0]
        print(f"{name}  (imitates {column}; one frame per "
              f"{catalogue.FRAME_QUARTER_LENGTHS[name]} quarter notes)")
        print(f"    {description}\n")
    print("Also accepted as --dataset: a Boulanger-Lewandowski pickle "
          "(JSB_Chorales.pickle, Nottingham.pickle, MuseData.pickle) for the paper's own "
          "data, or a folder of MIDI, MusicXML, ABC or Humdrum files.")
    return 0
