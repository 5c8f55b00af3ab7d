#!/bin/bash
# Makes the test PKI of the tls step in DIR: a CA, the broker's certificate
# (for the name localhost only), a client certificate, and a second CA that
# signed none of them. P-256 keys, valid for two days, readable by the broker
# (user rabbitmq) and the workers (www-data): test keys, nothing else.
#
# usage: tests/tls/pki.sh DIR
set -eu

dir=$1
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() {  # NAME SUBJECT
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "$2" \
        -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign
}

leaf() {  # NAME SUBJECT EXTENSIONS
    key "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 2 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "/CN=Bloodbank test CA"
ca other-ca "/CN=Some other CA"
leaf broker "/CN=localhost" "subjectAltName=DNS:localhost
extendedKeyUsage=serverAuth"
leaf client "/CN=bloodbank" "extendedKeyUsage=clientAuth"
rm -f ca.key other-ca.key ca.srl
chmod 755 "$dir"
chmod 644 ./*
