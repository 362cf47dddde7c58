"""The TwiML interpreter and the web application.

The Flask app factory, script bins, the TwiML parser and verb model (``twiml``), the pure
step function that advances a script by one event, and the webhook client that fetches
documents and sends status callbacks. May import ``calls``, ``store`` and ``media.protocol``.
"""
