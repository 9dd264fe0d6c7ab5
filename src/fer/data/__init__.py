"""Data in: fetch a source, read its layout and labels, split it by person, find the faces
and decode every image once into the uint8 cache that training and evaluation read.

    sources -> formats (a reader per data.format; images, labels) -> split -> preprocess (faces) -> cache
"""
