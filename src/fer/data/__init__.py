"""Data in: fetch a source, read its layout and labels, split it by person, find the faces
and decode every image once into the uint8 cache that training and evaluation read.

    sources -> formats (kdef, labels) -> split -> preprocess (faces) -> cache
"""
