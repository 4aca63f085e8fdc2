using System.Net.Security;
using System.Net.Sockets;

namespace Rx.Uhura.Transport;

/// <summary>Ends the sending direction of a stream so the peer reads the end, while its data can still be read.</summary>
internal static class HalfClose
{
    /// <summary>A socket stream shuts down its sending side; a TLS stream sends its close_notify alert; an in-memory stream completes its outgoing pipe; others do nothing.</summary>
    public static async ValueTask SendAsync(Stream stream)
    {
        try
        {
            switch (stream)
            {
                case NetworkStream network:
                    network.Socket.Shutdown(SocketShutdown.Send);
                    break;
                case MemoryDuplexStream memory:
                    memory.ShutdownSend();
                    break;
                case SslStream ssl:
                    await ssl.ShutdownAsync().ConfigureAwait(false);
                    break;
                case TlsTransport.HandshakingStream handshaking:
                    await handshaking.ShutdownAsync().ConfigureAwait(false);
                    break;
            }
        }
        catch (Exception ex) when (ex is SocketException or IOException or ObjectDisposedException or InvalidOperationException or NotSupportedException)
        {
        }
    }
}
