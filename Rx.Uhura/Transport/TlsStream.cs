using System.Net.Security;

namespace Rx.Uhura.Transport;

/// <summary>
/// An <see cref="SslStream"/> that keeps the facts of the connection under it (the peer's address and credentials) and
/// half-closes with TLS's <c>close_notify</c> alert.
/// </summary>
internal sealed class TlsStream(Stream inner) : SslStream(inner, leaveInnerStreamOpen: false), ITransportStream
{
    public string? RemoteAddress => SocketFacts.Of(InnerStream)?.RemoteAddress;

    public UnixPeerCredentials? PeerCredentials => SocketFacts.Of(InnerStream)?.PeerCredentials;

    public async ValueTask ShutdownSendAsync()
    {
        try
        {
            await ShutdownAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or NotSupportedException or System.Security.Cryptography.CryptographicException)
        {
            // not authenticated, or already gone (OpenSSL then refuses to make the alert: "wrong version number"): the
            // peer reads the end either way
        }
    }
}
