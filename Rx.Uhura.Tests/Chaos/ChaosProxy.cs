using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Rx.Uhura.Tests.Chaos;

/// <summary>How a <see cref="ChaosProxy"/> misbehaves. All off by default: the proxy then just forwards bytes.</summary>
public sealed record ChaosProxyOptions
{
    /// <summary>No chaos: bytes are forwarded, connections are only cut by <see cref="ChaosProxy.CutAll"/>.</summary>
    public static ChaosProxyOptions Default { get; } = new();

    /// <summary>
    /// With <see cref="CutIntervalMax"/>: each accepted pair is cut after a delay drawn uniformly in
    /// [<see cref="CutIntervalMin"/>, <see cref="CutIntervalMax"/>] (real time). Set both or neither.
    /// </summary>
    public TimeSpan? CutIntervalMin { get; init; }

    /// <summary>The upper bound of the cut delay; see <see cref="CutIntervalMin"/>.</summary>
    public TimeSpan? CutIntervalMax { get; init; }

    /// <summary>Seeds the <see cref="Random"/> the cut delays are drawn from (in the order the draws happen).</summary>
    public int Seed { get; init; }

    /// <summary>Starts refusing: accepted sockets are reset at once. Change it at runtime with <see cref="ChaosProxy.SetRefusing"/>.</summary>
    public bool RefuseConnections { get; init; }

    /// <summary>Automatic cutting stops once <see cref="ChaosProxy.Cuts"/> reaches this; <see cref="ChaosProxy.CutAll"/> always cuts.</summary>
    public int? MaxCuts { get; init; }
}

/// <summary>
/// A fault-injecting TCP proxy for tests: listens on 127.0.0.1 (port 0), and for each accepted client opens a socket
/// to the upstream endpoint (TCP or Unix) and forwards bytes both ways. A half-close (FIN) is forwarded as a
/// half-close, so graceful closes pass through; a reset on one side resets the other. <see cref="CutAll"/> and the
/// automatic cuts of <see cref="ChaosProxyOptions"/> reset both sides abruptly, as a network failure would
/// (on a Unix upstream there is no reset: that side just sees the end of the stream).
/// </summary>
public sealed class ChaosProxy : IAsyncDisposable
{
    private const int BufferSize = 64 * 1024;

    private volatile EndPoint _upstream;
    private readonly ChaosProxyOptions _options;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _disposing = new();
    private readonly ConcurrentDictionary<long, Pair> _pairs = new();
    private readonly Random _random;
    private readonly object _gate = new(); // guards _random, _cuts increments, the pause state
    private readonly Task _acceptLoop;

    private TaskCompletionSource _resumed = NewResumeSignal(completed: true);
    private long _nextPairId;
    private int _cuts;
    private int _accepted;
    private int _refused;
    private volatile bool _refusing;
    private volatile bool _paused;
    private int _disposed;

    private ChaosProxy(EndPoint upstream, ChaosProxyOptions options)
    {
        _upstream = upstream;
        _options = options;
        _random = new Random(options.Seed);
        _refusing = options.RefuseConnections;

        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(512);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }

        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        Uri = string.Create(CultureInfo.InvariantCulture, $"tcp://127.0.0.1:{EndPoint.Port}");
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>Where clients connect: 127.0.0.1 and the port the system chose.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary><see cref="EndPoint"/> as <c>tcp://127.0.0.1:PORT</c>.</summary>
    public string Uri { get; }

    /// <summary>Pairs the proxy has cut (by <see cref="CutAll"/> or automatically), one per pair.</summary>
    public int Cuts => Volatile.Read(ref _cuts);

    /// <summary>Pairs alive now (including one whose upstream connect is under way).</summary>
    public int ActiveConnections => _pairs.Count;

    /// <summary>Client sockets accepted, refused ones included.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>Client sockets reset at once because the proxy was refusing.</summary>
    public int Refused => Volatile.Read(ref _refused);

    /// <summary>Whether new connections are reset at once.</summary>
    public bool IsRefusing => _refusing;

    /// <summary>Whether automatic cuts are paused.</summary>
    public bool IsChaosPaused => _paused;

    /// <summary>Starts a proxy in front of <paramref name="upstream"/> (an <see cref="IPEndPoint"/>, <see cref="DnsEndPoint"/> or <see cref="UnixDomainSocketEndPoint"/>).</summary>
    public static ChaosProxy Start(EndPoint upstream, ChaosProxyOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        options ??= ChaosProxyOptions.Default;
        if (options.CutIntervalMin.HasValue != options.CutIntervalMax.HasValue)
        {
            throw new ArgumentException("Set both CutIntervalMin and CutIntervalMax, or neither.", nameof(options));
        }

        if (options.CutIntervalMin is { } min && (min < TimeSpan.Zero || min > options.CutIntervalMax!.Value))
        {
            throw new ArgumentException("The cut interval needs 0 <= CutIntervalMin <= CutIntervalMax.", nameof(options));
        }

        if (options.MaxCuts < 0)
        {
            throw new ArgumentException("MaxCuts cannot be negative.", nameof(options));
        }

        return new ChaosProxy(upstream, options);
    }

    /// <summary>Resets every live pair on both sides (RST). Returns how many pairs were cut.</summary>
    public int CutAll()
    {
        var cut = 0;
        foreach (var pair in _pairs.Values)
        {
            lock (_gate)
            {
                if (pair.Abort(countAsCut: true))
                {
                    cut++;
                }
            }
        }

        return cut;
    }

    /// <summary>While refusing, accepted sockets are reset at once (a server that is down behind an open port); live pairs go on.</summary>
    public void SetRefusing(bool refusing) => _refusing = refusing;

    /// <summary>Sends the connections accepted from now on to <paramref name="upstream"/> (another server); live pairs stay where they are.</summary>
    public void Retarget(EndPoint upstream) => _upstream = upstream ?? throw new ArgumentNullException(nameof(upstream));

    /// <summary>Stops automatic cuts until <see cref="ResumeChaos"/>. A cut delay that ends while paused is drawn again after resuming.</summary>
    public void PauseChaos()
    {
        lock (_gate)
        {
            if (!_paused)
            {
                _paused = true;
                _resumed = NewResumeSignal(completed: false);
            }
        }
    }

    /// <summary>Resumes automatic cuts.</summary>
    public void ResumeChaos()
    {
        lock (_gate)
        {
            _paused = false;
            _resumed.TrySetResult();
        }
    }

    /// <summary>Stops listening, resets every pair, and waits for all the proxy's tasks to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _disposing.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _acceptLoop.ConfigureAwait(false);

        // No pair is added any more: reset them all (not counted as cuts) and wait for their tasks.
        var pairs = _pairs.Values.ToArray();
        foreach (var pair in pairs)
        {
            pair.Abort();
        }

        await Task.WhenAll(pairs.Select(p => p.Completion)).ConfigureAwait(false);
        _disposing.Dispose();
    }

    private static TaskCompletionSource NewResumeSignal(bool completed)
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (completed)
        {
            signal.SetResult();
        }

        return signal;
    }

    private async Task AcceptLoopAsync()
    {
        var token = _disposing.Token;
        while (!token.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (Exception) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                // A client gone before it was accepted, or a transient error (out of descriptors): go on, without spinning.
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(5), token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            Interlocked.Increment(ref _accepted);
            if (_refusing)
            {
                Interlocked.Increment(ref _refused);
                client.Close(0);
                continue;
            }

            try
            {
                client.NoDelay = true;
            }
            catch (SocketException)
            {
                client.Dispose(); // reset before we got to it
                continue;
            }

            var pair = new Pair(client, CancellationTokenSource.CreateLinkedTokenSource(token), () => Interlocked.Increment(ref _cuts));
            var id = Interlocked.Increment(ref _nextPairId);
            _pairs[id] = pair;
            pair.Completion = RunPairAsync(id, pair);
        }
    }

    private async Task RunPairAsync(long id, Pair pair)
    {
        // Off the accept loop at once: the connect and the pumps never hold up the next accept.
        await Task.Yield();
        var chaos = _options.CutIntervalMin.HasValue ? ChaosAsync(pair) : Task.CompletedTask;
        try
        {
            var target = _upstream;
            var upstream = CreateUpstreamSocket(target);
            if (!pair.SetUpstream(upstream))
            {
                return; // cut before the upstream socket existed
            }

            await upstream.ConnectAsync(target, pair.Token).ConfigureAwait(false);
            await Task.WhenAll(
                PumpAsync(pair.Client, upstream, pair),
                PumpAsync(upstream, pair.Client, pair)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The upstream connect failed or was cancelled by a cut: the client sees a reset, like a dead server.
            pair.Abort();
        }
        finally
        {
            await pair.EndAsync().ConfigureAwait(false);
            await chaos.ConfigureAwait(false);
            pair.CloseGracefully();
            _pairs.TryRemove(id, out _);
        }
    }

    private static Socket CreateUpstreamSocket(EndPoint upstream)
    {
        if (upstream is UnixDomainSocketEndPoint)
        {
            return new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        }

        var socket = upstream.AddressFamily == AddressFamily.Unspecified
            ? new Socket(SocketType.Stream, ProtocolType.Tcp) // dual mode, for a DnsEndPoint
            : new Socket(upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.NoDelay = true;
        return socket;
    }

    /// <summary>Copies <paramref name="from"/> to <paramref name="to"/>; the end of the stream becomes a half-close, an error resets the pair.</summary>
    private static async Task PumpAsync(Socket from, Socket to, Pair pair)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None).ConfigureAwait(false);
                if (read == 0)
                {
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                var pending = buffer.AsMemory(0, read);
                while (!pending.IsEmpty)
                {
                    var sent = await to.SendAsync(pending, SocketFlags.None).ConfigureAwait(false);
                    pending = pending[sent..];
                }
            }
        }
        catch (Exception)
        {
            // A reset by either peer, or a cut (the sockets were closed under us): both sides end abruptly.
            pair.Abort();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Cuts <paramref name="pair"/> after a random delay, unless it ends first, chaos is paused, or the cut budget is spent.</summary>
    private async Task ChaosAsync(Pair pair)
    {
        var token = pair.Token;
        try
        {
            while (true)
            {
                Task resumed;
                lock (_gate)
                {
                    resumed = _resumed.Task;
                }

                await resumed.WaitAsync(token).ConfigureAwait(false);
                await Task.Delay(NextCutDelay(), token).ConfigureAwait(false);
                lock (_gate)
                {
                    if (_paused)
                    {
                        continue;
                    }

                    if (_options.MaxCuts is { } max && Cuts >= max)
                    {
                        return;
                    }

                    pair.Abort(countAsCut: true);
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The pair ended before its cut.
        }
    }

    private TimeSpan NextCutDelay()
    {
        var min = _options.CutIntervalMin!.Value.Ticks;
        var max = _options.CutIntervalMax!.Value.Ticks;
        lock (_gate)
        {
            return TimeSpan.FromTicks(_random.NextInt64(min, max + 1));
        }
    }

    /// <summary>One client socket and its upstream socket.</summary>
    private sealed class Pair(Socket client, CancellationTokenSource lifetime, Action countCut)
    {
        private readonly object _lock = new();
        private Socket? _upstream;
        private Task? _cancellation;
        private bool _closed;

        public Socket Client { get; } = client;

        public CancellationToken Token { get; } = lifetime.Token;

        public Task Completion { get; set; } = Task.CompletedTask;

        /// <summary>Registers the upstream socket; false (and the socket disposed) if the pair was already cut.</summary>
        public bool SetUpstream(Socket upstream)
        {
            lock (_lock)
            {
                if (!_closed)
                {
                    _upstream = upstream;
                    return true;
                }
            }

            upstream.Dispose();
            return false;
        }

        /// <summary>Resets both sockets (linger 0). True if this call ended a live pair.</summary>
        /// <param name="countAsCut">Count a cut first, so that whoever sees the reset also sees the count.</param>
        public bool Abort(bool countAsCut = false)
        {
            lock (_lock)
            {
                if (_closed)
                {
                    return false;
                }

                _closed = true;
                if (countAsCut)
                {
                    countCut();
                }

                RequestCancellation();
                Reset(Client);
                if (_upstream is { } upstream)
                {
                    Reset(upstream);
                }

                return true;
            }
        }

        /// <summary>The pumps are done: stop the pair's timer and connect. Completes when the token's callbacks have run.</summary>
        public Task EndAsync()
        {
            lock (_lock)
            {
                return RequestCancellation();
            }
        }

        /// <summary>Both directions ended (or the pair was reset), and nothing uses the token any more: close what is left.</summary>
        public void CloseGracefully()
        {
            lock (_lock)
            {
                _closed = true;
                Client.Dispose();
                _upstream?.Dispose();
                lifetime.Dispose();
            }
        }

        // CancelAsync runs the token's callbacks (timer, connect) on the pool, never inline under our locks.
        private Task RequestCancellation() => _cancellation ??= lifetime.CancelAsync();

        private static void Reset(Socket socket)
        {
            try
            {
                socket.Close(0);
            }
            catch (Exception)
            {
                // Already closed.
            }
        }
    }
}
