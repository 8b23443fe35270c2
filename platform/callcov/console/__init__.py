"""The review console (issue 15): a static page under ``/console`` that signs in with the account's
email and password and uses only the public API (``static/app.js``)."""
