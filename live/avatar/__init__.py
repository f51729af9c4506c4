"""Avatars: one photo made into a code (and a tuned generator) that the live loop drives."""

from live.avatar.avatar import Avatar, AvatarError

__all__ = ["Avatar", "AvatarError"]
