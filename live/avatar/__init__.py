"""Avatars: one photo made into a code (and a tuned generator) that the live loop drives."""

from live.avatar.avatar_file import Avatar, AvatarError

__all__ = ["Avatar", "AvatarError"]
