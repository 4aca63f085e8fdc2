using System.Net;
using System.Net.Sockets;

namespace Rx.Uhura.Transport;

/// <summary>TCP and Unix domain socket transport: one implementation, addressed by <see cref="EndPoint"/>.</summary>
public sealed class SocketTransport : ITransport
{
    /// <summary>The shared instance (Unix socket files owner-only).</summary>
    public static SocketTransport Instance { get; } = new();

    /// <summary>
    /// The permissions of a Unix socket file this transport listens on: owner read and write only by default, so other
    /// users cannot connect. They are set between bind and listen, before any connection can be accepted.
    /// </summary>
    public UnixFileMode UnixSocketFileMode { get; init; } = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <inheritdoc/>
    public async ValueTask<ITransportListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        if (endPoint is DnsEndPoint dns)
        {
            var addresses = await Dns.GetHostAddressesAsync(dns.Host, cancellationToken).ConfigureAwait(false);
            endPoint = new IPEndPoint(addresses.First(), dns.Port);
        }

        string? unixPath = null;
        if (endPoint is UnixDomainSocketEndPoint unix)
        {
            unixPath = unix.ToString();
            await RemoveStaleSocketFileAsync(unixPath, cancellationToken).ConfigureAwait(false);
        }

        var socket = CreateSocket(endPoint);
        try
        {
            socket.Bind(endPoint);
            if (unixPath is not null && !OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(unixPath, UnixSocketFileMode);
            }

            socket.Listen(); // the largest backlog the system allows (somaxconn): bursts of connections are not refused
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new SocketListener(socket, unixPath);
    }

    /// <inheritdoc/>
    public async ValueTask<Stream> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        var socket = CreateSocket(endPoint);
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return new SocketStream(socket);
        }
        catch (SocketException ex) when (endPoint is UnixDomainSocketEndPoint unix)
        {
            socket.Dispose();
            // .NET reports a missing socket file as "Cannot assign requested address": say what it is.
            var path = unix.ToString();
            throw !File.Exists(path)
                ? new IOException($"No socket file at '{path}'.", ex)
                : ex.SocketErrorCode == SocketError.ConnectionRefused
                    ? new IOException($"Nothing listens on '{path}' (a socket file left by a stopped server?).", ex)
                    : new IOException($"Cannot connect to '{path}': {ex.Message}", ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static Socket CreateSocket(EndPoint endPoint)
    {
        if (endPoint is UnixDomainSocketEndPoint)
        {
            return new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        }

        var family = endPoint.AddressFamily == AddressFamily.Unspecified ? AddressFamily.InterNetwork : endPoint.AddressFamily;
        var socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        return socket;
    }

    /// <summary>
    /// A socket file left by a dead process refuses connections: it is removed. A live server answers: that is an
    /// address-in-use error, and the file is left alone.
    /// </summary>
    private static async Task RemoveStaleSocketFileAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            return;
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await probe.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
        {
            // A regular file refuses connections too: never delete one. open(2) fails on a socket file, works on a file.
            try
            {
                using var file = new FileStream(path, FileMode.Open, FileAccess.Read);
            }
            catch (IOException)
            {
                File.Delete(path);
                return;
            }

            throw new IOException($"'{path}' exists and is not a socket; it was left alone.");
        }

        throw new SocketException((int)SocketError.AddressAlreadyInUse);
    }

    private sealed class SocketListener(Socket socket, string? unixPath) : ITransportListener
    {
        private int _disposed;

        public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

        public async ValueTask<Stream?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                try
                {
                    var accepted = await socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                    if (accepted.AddressFamily != AddressFamily.Unix)
                    {
                        accepted.NoDelay = true;
                    }

                    return new SocketStream(accepted);
                }
                catch (ObjectDisposedException)
                {
                    return null;
                }
                catch (SocketException) when (Volatile.Read(ref _disposed) != 0)
                {
                    return null;
                }
                catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
                {
                    // A client that gave up before being accepted: keep accepting.
                }
            }
        }

        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                socket.Dispose();
                if (unixPath is not null)
                {
                    try
                    {
                        File.Delete(unixPath);
                    }
                    catch (IOException)
                    {
                    }
                    catch (UnauthorizedAccessException)
                    {
                    }
                }
            }

            return ValueTask.CompletedTask;
        }
    }
}
