"""The paper's published figures (Pascanu et al. 2013, section 5).

The rows are the paper's model names; `paper_row` says which row a training
config is, whatever the task.
"""

# Test NLL per frame (nats) on the original music data sets.
PAPER_MUSIC_NLL = {
    "RNN": {"Nottingham": 3.225, "JSB Chorales": 8.338, "MuseData": 6.990},
    "DT(S)-RNN": {"Nottingham": 3.206, "JSB Chorales": 8.278, "MuseData": 6.988},
    "DOT(S)-RNN": {"Nottingham": 3.215, "JSB Chorales": 8.437, "MuseData": 6.973},
    "sRNN (2 levels)": {"Nottingham": 3.258, "JSB Chorales": 8.367, "MuseData": 6.954},
    "RNN with fast dropout": {"Nottingham": 3.09, "JSB Chorales": 8.01, "MuseData": 6.75},
    "DOT(S)-RNN with Lp units and dropout": {
        "Nottingham": 2.95, "JSB Chorales": 7.92, "MuseData": 6.59,
    },
}
# Built-in sets imitate the paper's; the original files (pickles or their
# MATLAB form, known by their usual names) are the real thing.
PAPER_MUSIC_COLUMNS = {
    "jsb_chorales": ("JSB Chorales", True),
    "folk_tunes": ("Nottingham", True),
    "classical_polyphony": ("MuseData", True),
    **{f"{stem}{suffix}": (column, False)
       for stem, column in (("jsb_chorales", "JSB Chorales"), ("nottingham", "Nottingham"),
                            ("musedata", "MuseData"))
       for suffix in (".pickle", ".pkl", ".mat")},
}
# The best row of the paper's music table, and its figure per data set.
PAPER_MUSIC_BEST = "DOT(S)-RNN with Lp units and dropout"
# Penn Treebank test set: bits per character and word perplexity (the paper
# gives no word figure for RNN and DT(S)-RNN).
PAPER_PTB_BITS_PER_CHARACTER = {
    "RNN": 1.414, "DT(S)-RNN": 1.409, "DOT(S)-RNN": 1.386, "sRNN (2 levels)": 1.412,
}
PAPER_PTB_WORD_PERPLEXITY = {"DOT(S)-RNN": 107.5, "sRNN (2 levels)": 110.0}


def paper_row(config):
    """The paper's name for the model `config` trains, or `None`.

    Lp units on the deep output with dropout are the paper's regularised
    DOT(S)-RNN; any other model with them has no row.
    """
    regularised = config.output_hidden_activation == "lp" and config.output_dropout > 0
    if config.architecture == "dots_rnn":
        return "DOT(S)-RNN with Lp units and dropout" if regularised else "DOT(S)-RNN"
    if regularised:
        return None
    if config.architecture == "rnn":
        return "RNN"
    if config.architecture == "dts_rnn":
        return "DT(S)-RNN"
    if config.architecture == "srnn" and (config.num_layers or 2) == 2:
        return "sRNN (2 levels)"
    return None
