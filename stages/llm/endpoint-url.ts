// A base URL as it enters a hash: no credentials. No imports, so the
// configuration can use it without pulling in the providers.

/** Query parameter names that may carry a credential (dropped from the identity). */
const SECRET_PARAM = /key|token|secret|sig|pass|auth|credential|session/i;

/**
 * A base URL as it enters the hash: no user:password, no secret-looking
 * query parameters, no fragment, no trailing slash; scheme and host in lower
 * case (as URL parsing gives them). Text that is not a URL is kept, minus
 * anything that looks like `user:password@`.
 */
export function endpointUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return raw.trim().replace(/\/\/[^/]*@/, '//').replace(/^[^/@\s]*@/, '').replace(/\/+$/, '');
  }
  url.username = '';
  url.password = '';
  url.hash = '';
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) url.searchParams.delete(name);
  }
  url.searchParams.sort();
  url.pathname = url.pathname.replace(/\/+$/, '');
  return url.toString().replace(/\/+(?=\?|$)/, '');
}
