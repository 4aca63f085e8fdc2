namespace Rx.Uhura;

/// <summary>
/// A TLS handshake failed: the peer's certificate was refused (untrusted chain, wrong host name, thumbprint not
/// pinned, missing client certificate), the peer does not speak TLS, or the handshake timed out. A client reports it
/// in its <c>State</c> and from <c>ConnectAsync</c>; a server reports it on its <c>Errors</c> stream and keeps serving
/// the other connections.
/// </summary>
public sealed class TlsException : UhuraException
{
    /// <summary>Creates the error.</summary>
    public TlsException(string message, Exception? innerException = null) : base(message, innerException) { }
}
