using System.Net;
using System.Net.Sockets;

namespace Rx.Uhura.Transport;

/// <summary>A connected TCP or Unix domain socket as a stream, with the facts only the socket knows (<see cref="ITransportStream"/>).</summary>
internal sealed class SocketStream(Socket socket) : NetworkStream(socket, ownsSocket: true), ITransportStream
{
    private readonly SocketFacts _facts = new(socket);

    public string? RemoteAddress => _facts.RemoteAddress;

    public UnixPeerCredentials? PeerCredentials => _facts.PeerCredentials;

    public ValueTask ShutdownSendAsync() => _facts.ShutdownSendAsync();
}

/// <summary>
/// The facts of a connected socket: those of a <see cref="SocketStream"/>, and of a plain <see cref="NetworkStream"/>
/// an application hands to <c>UhuraClient.Connect(Stream)</c> or <c>UhuraServer.Accept(Stream)</c>.
/// </summary>
internal sealed class SocketFacts(Socket socket) : ITransportStream
{
    private UnixPeerCredentials? _credentials;
    private bool _credentialsRead;

    /// <summary>The transport facts of <paramref name="stream"/>: its own, a socket's for a framework socket stream, else none.</summary>
    public static ITransportStream? Of(Stream stream) => stream switch
    {
        ITransportStream transport => transport,
        NetworkStream network => new SocketFacts(network.Socket),
        _ => null,
    };

    public string? RemoteAddress
    {
        get
        {
            try
            {
                return socket.RemoteEndPoint switch
                {
                    IPEndPoint ip => ip.ToString(),
                    UnixDomainSocketEndPoint => PeerCredentials is { } peer ? $"unix pid {peer.ProcessId}" : "unix",
                    { } other => other.ToString(),
                    null => null,
                };
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return null;
            }
        }
    }

    /// <summary>Read once (a system call), then kept: the kernel's answer does not change for a connected socket.</summary>
    public UnixPeerCredentials? PeerCredentials
    {
        get
        {
            if (!Volatile.Read(ref _credentialsRead))
            {
                _credentials = UnixPeerCredentials.Read(socket);
                Volatile.Write(ref _credentialsRead, true);
            }

            return _credentials;
        }
    }

    public ValueTask ShutdownSendAsync()
    {
        try
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // already closed: the peer reads the end either way
        }

        return ValueTask.CompletedTask;
    }
}
