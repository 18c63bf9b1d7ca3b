"""SMART discovery: .well-known/smart-configuration, OpenID configuration and the CapabilityStatement security."""

from ..domain.scopes import INGEST_ADMIN, INGEST_WRITE

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
CAPABILITIES = [
    "launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric",
    "client-confidential-asymmetric", "context-ehr-patient", "context-standalone-patient",
    "sso-openid-connect", "permission-offline", "permission-online", "permission-patient", "permission-user",
    "permission-v1", "permission-v2", "authorize-post",
]
SCOPES_SUPPORTED = [
    "openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access", "online_access",
    "patient/*.rs", "patient/*.read", "user/*.cruds", "user/*.read", "user/*.write", "system/*.cruds",
    "system/*.read", "system/AuditEvent.rs", INGEST_WRITE, INGEST_ADMIN, "launch:create", "introspect",
]


def endpoint_urls(root):
    """The authorization server's endpoint URLs under the server's root URL."""
    return {
        "authorize": f"{root}/auth/authorize", "token": f"{root}/auth/token",
        "introspect": f"{root}/auth/introspect", "revoke": f"{root}/auth/revoke",
        "jwks": f"{root}/auth/jwks", "launch": f"{root}/auth/launch",
    }


def smart_configuration(root, fhir_base):
    """The SMART App Launch 2.x configuration document."""
    urls = endpoint_urls(root)
    return {
        "issuer": fhir_base,
        "jwks_uri": urls["jwks"],
        "authorization_endpoint": urls["authorize"],
        "token_endpoint": urls["token"],
        "introspection_endpoint": urls["introspect"],
        "revocation_endpoint": urls["revoke"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post",
                                                  "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    }


def openid_configuration(root, fhir_base):
    """OpenID Connect discovery for the id_tokens this server issues."""
    urls = endpoint_urls(root)
    return {
        "issuer": fhir_base, "authorization_endpoint": urls["authorize"], "token_endpoint": urls["token"],
        "jwks_uri": urls["jwks"], "response_types_supported": ["code"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "fhirUser", "profile"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser",
                             "preferred_username"],
        "code_challenge_methods_supported": ["S256"],
    }


def capability_security(root):
    """CapabilityStatement.rest.security: SMART-on-FHIR service and the oauth-uris extension."""
    urls = endpoint_urls(root)
    return {
        "cors": False,
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                 "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
                     "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)"}],
        "extension": [{"url": OAUTH_URIS, "extension": [
            {"url": name, "valueUri": urls[name]} for name in ("authorize", "token", "introspect", "revoke")
        ]}],
        "description": "SMART App Launch 2.x (authorization code + PKCE) and Backend Services "
                       "(client_credentials with private_key_jwt); v1 and v2 scopes.",
    }
