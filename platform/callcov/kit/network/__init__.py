"""Outbound HTTP to user-supplied URLs (``audio_url``, ``webhook_url``) without SSRF.

- :mod:`.policy`: which addresses may be reached (public ones, and the ``allow`` networks: the setting
  that lets local development and tests reach loopback), and which URLs are acceptable at all.
- :mod:`.dns`: resolve a URL's host once and check every address it resolves to
  (:func:`~.dns.resolve_checked`, :func:`~.dns.check_url`).
- :mod:`.client`: connect to the checked address only, with the original Host header and TLS name
  (:func:`~.client.open_pinned`), and follow redirects with each hop checked again
  (:func:`~.client.open_following`).
- :mod:`.errors`: the errors all of these raise. They are not HTTP errors: each domain maps them to its
  own (``InvalidAudioUrl``, ``InvalidWebhookUrl``, ...).
"""
