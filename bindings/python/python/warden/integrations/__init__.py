"""Adapters that put Warden in front of every tool call of an agent framework, each through the
framework's own extension point. Import the one you use, e.g. ``warden.integrations.langchain``;
each needs its framework installed (``pip install "warden[langchain]"``), none is imported here."""
