"""A session's contacts: its phone's address book, who wrote, and the owner's notes."""
