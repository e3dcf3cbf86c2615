/**
 * Makes a throwaway self-signed TLS certificate for 127.0.0.1 and localhost with `openssl`, for
 * tests that serve HTTPS or WSS.
 *
 * The certificate is an end-entity certificate (`CA:FALSE`) trusted directly as its own root.
 * Deno's TLS (rustls/webpki) refuses a certificate marked `CA:TRUE` as a server certificate
 * ("CaUsedAsEndEntity"), and `openssl req -x509` marks it so unless told otherwise.
 *
 * How a client trusts it in Deno 2.9:
 * - fetch: `fetch(url, { client: Deno.createHttpClient({ caCerts: [cert] }) })`;
 * - WebSocket, in process: `new WebSocket(url, { client })` with the same client (a Deno extension);
 * - a child process: `deno run --cert <certFile>` or the `DENO_CERT=<certFile>` environment variable.
 *
 * @example
 * ```ts
 * const { cert, key } = await makeTestCert(await Deno.makeTempDir());
 * const server = Deno.serve({ port: 0, hostname: "127.0.0.1", cert, key }, () => new Response("ok"));
 * ```
 */

/** How long the certificate is valid, in days: long enough for any test run, useless after. */
const TEST_CERT_DAYS = 2;

/** A certificate and its private key, as PEM text and as files. */
export interface TestCert {
  /** Path of the PEM certificate; pass it to `--cert` or `DENO_CERT`. */
  certFile: string;
  /** Path of the PEM private key (PKCS#8, unencrypted). */
  keyFile: string;
  /** The PEM certificate, for `Deno.serve({ cert })` and `Deno.createHttpClient({ caCerts })`. */
  cert: string;
  /** The PEM private key, for `Deno.serve({ key })`. */
  key: string;
}

/** Generates an ECDSA P-256 certificate for 127.0.0.1 and localhost into `dir`. */
export async function makeTestCert(dir: string): Promise<TestCert> {
  const certFile = `${dir}/cert.pem`;
  const keyFile = `${dir}/key.pem`;
  const args = [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    String(TEST_CERT_DAYS),
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "keyUsage=critical,digitalSignature",
    "-addext",
    "extendedKeyUsage=serverAuth",
  ];
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("openssl", { args, stdin: "null" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        "Cannot make test certificate: openssl is not installed (apt-get install openssl)",
      );
    }
    throw e;
  }
  if (!output.success) {
    throw new Error(
      `Cannot make test certificate: openssl exited with ${output.code}\n${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  }
  const [cert, key] = await Promise.all([Deno.readTextFile(certFile), Deno.readTextFile(keyFile)]);
  return { certFile, keyFile, cert, key };
}
