#!/bin/sh
# make-keys.sh -- the keys of the compose suite, made once into its volumes, as deploy/local/stack.sh
# makes them for `make up`: the JWT signing pair (RS256) and a self-signed TLS certificate for localhost.
# docker-compose.yaml runs it in the service `keys` (the gateway image: openssl comes with
# ca-certificates) before auth and the gateway start. Production gives these as secrets instead.
#   JWT_DIR  (default /var/lib/photo/jwt)   jwt-private.pem: auth's only (volume jwt-key)
#   KEYS_DIR (default /var/lib/photo/keys)  jwt-public.pem, tls.crt, tls.key: the gateway's (volume gateway-keys)
set -eu

JWT_DIR=${JWT_DIR:-/var/lib/photo/jwt}
KEYS_DIR=${KEYS_DIR:-/var/lib/photo/keys}
umask 077

if [ ! -s "$JWT_DIR/jwt-private.pem" ] || [ ! -s "$KEYS_DIR/jwt-public.pem" ]; then
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$JWT_DIR/jwt-private.pem.tmp" 2>/dev/null
	openssl pkey -in "$JWT_DIR/jwt-private.pem.tmp" -pubout -out "$KEYS_DIR/jwt-public.pem"
	mv "$JWT_DIR/jwt-private.pem.tmp" "$JWT_DIR/jwt-private.pem"
	echo "keys: made the JWT key pair ($JWT_DIR/jwt-private.pem, $KEYS_DIR/jwt-public.pem)"
fi
if [ ! -s "$KEYS_DIR/tls.crt" ] || [ ! -s "$KEYS_DIR/tls.key" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj /CN=localhost \
		-addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
		-keyout "$KEYS_DIR/tls.key.tmp" -out "$KEYS_DIR/tls.crt" 2>/dev/null
	mv "$KEYS_DIR/tls.key.tmp" "$KEYS_DIR/tls.key"
	echo "keys: made the self-signed TLS certificate $KEYS_DIR/tls.crt"
fi
echo "keys: ready"
