"""The special token ids, fixed for every vocabulary, beside the config that sizes it.

The first four ids of every vocabulary (``shared.text.tokenizer``) are reserved
for the special tokens every batch needs:

    PAD = 0  "<pad>"  fills a short row up to the batch width; the encoder skips it
    BOS = 1  "<bos>"  the first decoder input: "begin writing the answer"
    EOS = 2  "<eos>"  the last decoder target: "the answer is finished"
    UNK = 3  "<unk>"  stands for any token the vocabulary does not hold

They are never produced from text: a word spelled "<eos>" encodes as UNK, so a
sentence cannot end itself early or pad itself away.  Everything that reads ids
(input checks, search, the reference, the engines, the ONNX graphs) needs them,
and none of it needs the tokenizer: so they live here, on the ground floor.
"""

PAD, BOS, EOS, UNK = 0, 1, 2, 3
PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)
