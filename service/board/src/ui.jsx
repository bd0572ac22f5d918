// Small shared pieces: client-side links and the API error note.
export function navigate(href) {
  history.pushState(null, '', href);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return <a href={href} onClick={onClick} {...rest}>{children}</a>;
}

// The API's message, verbatim, with its code.
export function ErrorNote({ error }) {
  if (!error) return null;
  return (
    <p class="error" role="alert" data-testid="error">
      {error.message}{error.code ? ` (${error.status || ''} ${error.code})` : ''}
    </p>
  );
}
