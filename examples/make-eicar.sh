#!/bin/sh
# Writes examples/eicar.eml: a mail with the EICAR test file as a base64 attachment.
# The EICAR string is joined from two halves here so that no file in the repository holds it.
set -eu
dir=$(dirname "$0")
head='X5O!P%@AP[4\PZX54(P^)7CC)7}$'
tail='EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
b64=$(printf '%s%s' "$head" "$tail" | base64 -w 76)
cat > "$dir/eicar.eml" <<MAIL
Received: from client.example.test ([::ffff:127.0.0.1])
  by mx.example.test with ESMTP
  id 000000000016A031.000000006B019110.00002AB5; Sat, 21 Nov 2026 12:40:00 +0000
From: Mallory <mallory@example.test>
To: Bob <bob@example.test>
Subject: Your invoice
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=_b2"

--=_b2
Content-Type: text/plain; charset=us-ascii

Please see the attached invoice.

--=_b2
Content-Type: application/octet-stream; name="invoice.com"
Content-Disposition: attachment; filename="invoice.com"
Content-Transfer-Encoding: base64

$b64

--=_b2--
MAIL
