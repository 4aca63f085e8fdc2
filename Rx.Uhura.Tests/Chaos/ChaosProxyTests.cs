using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace Rx.Uhura.Tests.Chaos;

[Trait("Category", "Chaos")]
public sealed class ChaosProxyTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly EchoServer _echo = EchoServer.Start(new IPEndPoint(IPAddress.Loopback, 0));

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _echo.DisposeAsync();

    [Fact]
    public async Task Bytes_pass_through_both_ways_unchanged()
    {
        await using var proxy = ChaosProxy.Start(_echo.EndPoint);
        using var client = await ConnectAsync(proxy);

        var payload = new byte[1024 * 1024];
        new Random(42).NextBytes(payload);
        var sending = SendAllAsync(client, payload);
        var received = await ReceiveExactlyAsync(client, payload.Length);
        await sending.WaitAsync(Timeout);

        Assert.Equal(payload, received);
        Assert.Equal(1, proxy.Accepted);
        Assert.Equal(1, proxy.ActiveConnections);
        Assert.Equal(0, proxy.Cuts);
    }

    [Fact]
    public async Task CutAll_ends_the_connection_on_both_sides_and_counts_the_cut()
    {
        await using var proxy = ChaosProxy.Start(_echo.EndPoint);
        using var client = await ConnectAsync(proxy);
        await RoundTripAsync(client, "before the cut");
        var upstream = await _echo.NextSessionAsync();
        Assert.Equal(1, proxy.ActiveConnections);

        Assert.Equal(1, proxy.CutAll());

        Assert.Equal(1, proxy.Cuts);
        await ReadEndAsync(client);
        await upstream.Ended.WaitAsync(Timeout);
        Assert.Equal(0, proxy.CutAll()); // nothing left to cut
        Assert.Equal(1, proxy.Cuts);
    }

    [Fact]
    public async Task Automatic_chaos_cuts_a_connection_within_the_interval()
    {
        await using var proxy = ChaosProxy.Start(_echo.EndPoint, new ChaosProxyOptions
        {
            CutIntervalMin = TimeSpan.FromMilliseconds(20),
            CutIntervalMax = TimeSpan.FromMilliseconds(50),
            Seed = 7,
        });
        using var client = await ConnectAsync(proxy);

        await ReadEndAsync(client);
        Assert.Equal(1, proxy.Cuts);
    }

    [Fact]
    public async Task Automatic_chaos_stops_after_MaxCuts()
    {
        var options = new ChaosProxyOptions
        {
            CutIntervalMin = TimeSpan.FromMilliseconds(20),
            CutIntervalMax = TimeSpan.FromMilliseconds(50),
            MaxCuts = 1,
        };
        await using var proxy = ChaosProxy.Start(_echo.EndPoint, options);
        using var first = await ConnectAsync(proxy);
        await ReadEndAsync(first);
        Assert.Equal(1, proxy.Cuts);

        using var second = await ConnectAsync(proxy);
        await Task.Delay(options.CutIntervalMax.Value * 4); // well past any cut delay
        await RoundTripAsync(second, "still here");
        Assert.Equal(1, proxy.Cuts);
    }

    [Fact]
    public async Task Paused_chaos_cuts_nothing_until_resumed()
    {
        var options = new ChaosProxyOptions
        {
            CutIntervalMin = TimeSpan.FromMilliseconds(20),
            CutIntervalMax = TimeSpan.FromMilliseconds(50),
        };
        await using var proxy = ChaosProxy.Start(_echo.EndPoint, options);
        proxy.PauseChaos();
        using var client = await ConnectAsync(proxy);
        await Task.Delay(options.CutIntervalMax.Value * 4); // well past any cut delay
        await RoundTripAsync(client, "paused");
        Assert.Equal(0, proxy.Cuts);

        proxy.ResumeChaos();
        await ReadEndAsync(client);
        Assert.Equal(1, proxy.Cuts);
    }

    [Fact]
    public async Task Refusing_ends_new_connections_at_once_while_existing_ones_keep_working()
    {
        await using var proxy = ChaosProxy.Start(_echo.EndPoint);
        using var existing = await ConnectAsync(proxy);
        await RoundTripAsync(existing, "before");

        proxy.SetRefusing(true);
        await ConnectAndSeeTheEndAsync(proxy);

        await RoundTripAsync(existing, "during");
        Assert.Equal(1, proxy.Refused);

        proxy.SetRefusing(false);
        using var later = await ConnectAsync(proxy);
        await RoundTripAsync(later, "after");
        Assert.Equal(3, proxy.Accepted);
        Assert.Equal(0, proxy.Cuts);
    }

    [Fact]
    public async Task Refusing_from_the_start_ends_every_connection()
    {
        await using var proxy = ChaosProxy.Start(_echo.EndPoint, new ChaosProxyOptions { RefuseConnections = true });
        await ConnectAndSeeTheEndAsync(proxy);
        Assert.Equal(1, proxy.Refused);
        Assert.Equal(0, proxy.ActiveConnections);
    }

    [Fact]
    public async Task A_half_close_passes_through_and_the_close_stays_graceful()
    {
        await using var proxy = ChaosProxy.Start(_echo.EndPoint);
        using var client = await ConnectAsync(proxy);
        var message = Encoding.UTF8.GetBytes("everything I had to say");

        await SendAllAsync(client, message);
        client.Shutdown(SocketShutdown.Send);

        var upstream = await _echo.NextSessionAsync();
        Assert.Equal(EchoEnd.EndOfStream, await upstream.Ended.WaitAsync(Timeout));
        var received = await ReceiveExactlyAsync(client, message.Length);
        Assert.Equal(message, received);
        Assert.True(await ReadEndAsync(client), "the client saw a reset, not the end of the stream");
        Assert.Equal(0, proxy.Cuts);
    }

    [Fact]
    public async Task A_unix_socket_upstream_works_too()
    {
        var path = Path.Combine(Path.GetTempPath(), $"chaos-{Guid.NewGuid():N}.sock");
        await using var unixEcho = EchoServer.Start(new UnixDomainSocketEndPoint(path));
        try
        {
            await using var proxy = ChaosProxy.Start(unixEcho.EndPoint);
            using var client = await ConnectAsync(proxy);
            await RoundTripAsync(client, "over a unix socket");

            proxy.CutAll();
            await ReadEndAsync(client);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Dispose_stops_listening_and_closes_every_pair()
    {
        var proxy = ChaosProxy.Start(_echo.EndPoint);
        var endPoint = proxy.EndPoint;
        Assert.Equal($"tcp://127.0.0.1:{endPoint.Port}", proxy.Uri);
        using var client = await ConnectAsync(proxy);
        await RoundTripAsync(client, "hello");

        await proxy.DisposeAsync().AsTask().WaitAsync(Timeout);
        await proxy.DisposeAsync(); // twice is fine

        Assert.Equal(0, proxy.ActiveConnections);
        await ReadEndAsync(client);
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(() => late.ConnectAsync(endPoint).WaitAsync(Timeout));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public void Options_must_give_a_whole_interval()
    {
        Assert.Throws<ArgumentException>(() => ChaosProxy.Start(_echo.EndPoint, new ChaosProxyOptions { CutIntervalMin = TimeSpan.FromMilliseconds(1) }));
        Assert.Throws<ArgumentException>(() => ChaosProxy.Start(_echo.EndPoint, new ChaosProxyOptions
        {
            CutIntervalMin = TimeSpan.FromMilliseconds(50),
            CutIntervalMax = TimeSpan.FromMilliseconds(20),
        }));
    }

    private static async Task<Socket> ConnectAsync(ChaosProxy proxy)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(proxy.EndPoint).WaitAsync(Timeout);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects to a refusing proxy: the reset comes so fast that it may fail the connect itself, else the first read.</summary>
    private static async Task ConnectAndSeeTheEndAsync(ChaosProxy proxy)
    {
        Socket client;
        try
        {
            client = await ConnectAsync(proxy);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return;
        }

        using (client)
        {
            await ReadEndAsync(client);
        }
    }

    private static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        while (!data.IsEmpty)
        {
            var sent = await socket.SendAsync(data, SocketFlags.None, timeout.Token);
            data = data[sent..];
        }
    }

    private static async Task<byte[]> ReceiveExactlyAsync(Socket socket, int count)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        var buffer = new byte[count];
        var received = 0;
        while (received < count)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None, timeout.Token);
            Assert.True(read > 0, $"the stream ended after {received} of {count} bytes");
            received += read;
        }

        return buffer;
    }

    private static async Task RoundTripAsync(Socket socket, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        await SendAllAsync(socket, bytes);
        Assert.Equal(text, Encoding.UTF8.GetString(await ReceiveExactlyAsync(socket, bytes.Length)));
    }

    /// <summary>Reads until the connection ends: true for the end of the stream, false for a reset. Fails on data or a timeout.</summary>
    private static async Task<bool> ReadEndAsync(Socket socket)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        var buffer = new byte[1024];
        try
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            Assert.Equal(0, read);
            return true;
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return false;
        }
    }
}

internal enum EchoEnd
{
    EndOfStream,
    Error,
}

/// <summary>One connection the echo server accepted; <see cref="Ended"/> completes when its reading ends.</summary>
internal sealed class EchoSession
{
    private readonly TaskCompletionSource<EchoEnd> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<EchoEnd> Ended => _ended.Task;

    public void End(EchoEnd how) => _ended.TrySetResult(how);
}

/// <summary>A plain echo server (TCP or Unix): writes back every byte; at the end of the stream, half-closes and closes.</summary>
internal sealed class EchoServer : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Channel<EchoSession> _sessions = Channel.CreateUnbounded<EchoSession>();
    private readonly List<Task> _handlers = [];
    private readonly List<Socket> _sockets = [];
    private readonly Task _acceptLoop;

    private EchoServer(EndPoint endPoint)
    {
        _listener = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(endPoint);
        _listener.Listen(64);
        EndPoint = _listener.LocalEndPoint!;
        _acceptLoop = AcceptLoopAsync();
    }

    public EndPoint EndPoint { get; }

    public static EchoServer Start(EndPoint endPoint) => new(endPoint);

    public Task<EchoSession> NextSessionAsync() => _sessions.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _acceptLoop;
        Task[] handlers;
        lock (_handlers)
        {
            foreach (var socket in _sockets)
            {
                socket.Dispose();
            }

            handlers = [.. _handlers];
        }

        await Task.WhenAll(handlers).WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }

            var session = new EchoSession();
            lock (_handlers)
            {
                _sockets.Add(socket);
                _handlers.Add(EchoAsync(socket, session));
            }

            _sessions.Writer.TryWrite(session);
        }
    }

    private static async Task EchoAsync(Socket socket, EchoSession session)
    {
        await Task.Yield();
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None);
                if (read == 0)
                {
                    session.End(EchoEnd.EndOfStream);
                    socket.Shutdown(SocketShutdown.Send);
                    return;
                }

                var pending = buffer.AsMemory(0, read);
                while (!pending.IsEmpty)
                {
                    var sent = await socket.SendAsync(pending, SocketFlags.None);
                    pending = pending[sent..];
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            session.End(EchoEnd.Error);
        }
        finally
        {
            socket.Dispose();
        }
    }
}
