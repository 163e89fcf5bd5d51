"""The Atoma `db` Move module as data and pure functions.

Call targets and argument order (`calls`), the abort-code table (`aborts`), proof and leaf
hashing (`hashing`), event and ticket parsing (`events`, `ticket`, `movejson`), and how a
ticket object is located on chain (`dynfield`, `dbobject`). Nothing here performs I/O.
"""
