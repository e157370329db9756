"""SMPP 3.4: the wire codec, delivery receipt texts, and the pieces built on them.

Kept apart from the HTTP dialects because SMPP is a binary, session-oriented
protocol: its framing and PDU layout are tested byte for byte on their own.
"""
