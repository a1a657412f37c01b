#!/usr/bin/env python3
"""sigstore-python's verdict on each case make_test_pki.py wrote, with Python kernels 0.17's
policy shape (verify.py GitHubWorkflowPolicy: issuer v1 and v2, source repository, build signer
URI any of the workflows) against the given trusted root, offline.

    oracle_verify.py PKI_DIR

Prints one line per case: "<name> ok" or "<name> fail <reason>".
"""
import os
import sys

from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import (AllOf, AnyOf, OIDCBuildSignerURI, OIDCIssuer, OIDCIssuerV2,
                                    OIDCSourceRepositoryURI)

ISSUER = "https://token.actions.githubusercontent.com"
REPO = "https://github.com/huggingface/kernels-community"
WORKFLOWS = [f"{REPO}/.github/workflows/{w}.yaml@refs/heads/main"
             for w in ("build", "build-mac", "build-windows", "sign-old-builds")]

pki = sys.argv[1]
verifier = Verifier(trusted_root=TrustedRoot.from_file(os.path.join(pki, "trusted_root.json")))
policy = AllOf([OIDCIssuer(ISSUER), OIDCIssuerV2(ISSUER), OIDCSourceRepositoryURI(REPO),
                AnyOf([OIDCBuildSignerURI(w) for w in WORKFLOWS])])
for name in sorted(os.listdir(os.path.join(pki, "cases"))):
    d = os.path.join(pki, "cases", name)
    try:
        with open(os.path.join(d, "metadata.json.sigstore"), "rb") as f:
            bundle = Bundle.from_json(f.read())
        with open(os.path.join(d, "metadata.json"), "rb") as f:
            verifier.verify_artifact(f.read(), bundle, policy)
        print(name, "ok")
    except Exception as e:  # every refusal, whatever its class
        print(name, "fail", type(e).__name__, str(e).replace("\n", " ")[:200])
