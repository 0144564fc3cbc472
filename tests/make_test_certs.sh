#!/usr/bin/env bash
# Writes a throw-away certificate authority and two certificates it signed,
# for TLS tests: DIR/ca.pem, DIR/server.{pem,key} (localhost, 127.0.0.1 and
# ::1) and DIR/client.{pem,key} (a client certificate for mutual TLS); and
# a second authority, DIR/other_ca.pem, with DIR/other_client.{pem,key}, a
# client certificate a server trusting only ca.pem must refuse.
# Usage: make_test_certs.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }
authority() {  # NAME SUBJECT
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
authority ca "/CN=lossservice test CA"
authority other_ca "/CN=another test CA"
sign() {  # NAME SUBJECT EXTENSIONS [CA]
  local ca=${4:-ca}
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "$2"
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -out "$1.pem" \
    -days 2 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
sign server "/CN=localhost" \
  "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth"
sign client "/CN=lossservice test client" "extendedKeyUsage=clientAuth"
sign other_client "/CN=a client of another CA" "extendedKeyUsage=clientAuth" other_ca
rm -f ca.srl other_ca.srl
