"""Talking to engine hosts: which host owns a session, and every engine job sent to it."""
