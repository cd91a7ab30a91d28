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

/** The endpoint part of a canonical request: `base_url`, `api_version`, `region` (only those that apply and differ from the default). */
export type EndpointIdentity = Record<string, string>;

/** `{ base_url }` when `url` is not the provider's default, else nothing. */
export function unlessDefault(url: string, defaultUrl: string): EndpointIdentity {
  const u = endpointUrl(url);
  return u === endpointUrl(defaultUrl) ? {} : { base_url: u };
}

/** null for an empty identity (the default endpoint). */
export const orNull = (id: EndpointIdentity): EndpointIdentity | null => (Object.keys(id).length > 0 ? id : null);
