"""OAuth 2.0 protocol errors (RFC 6749 section 5.2), answered as JSON by the auth endpoints."""


class OAuthError(Exception):
    """An error of the token, introspection or revocation endpoint."""

    def __init__(self, error, description, status=400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self):
        """The JSON error response body."""
        return {"error": self.error, "error_description": self.description}


class AuthorizeError(Exception):
    """An error of the authorization endpoint.

    `redirect_uri` is set when the client and its redirect URI are trusted, so the error
    goes back to the app; otherwise it is shown to the user (RFC 6749 4.1.2.1).
    """

    def __init__(self, error, description, redirect_uri=None, state=None):
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state
