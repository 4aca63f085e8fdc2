using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Rx.Uhura.Transport;

/// <summary>
/// An in-process transport: a connection is a pair of bounded pipes, one each way, between a client stream and the
/// stream a listener accepts. Nothing touches the network, so an application's tests can run a real
/// <see cref="UhuraServer"/> and <see cref="UhuraClient"/> (or mesh nodes) against each other by name:
/// <c>memory://NAME</c> (a <see cref="MemoryEndPoint"/>).
/// </summary>
/// <remarks>
/// <para>
/// Names live in a registry per instance. <see cref="Shared"/> is the process-wide one that <c>memory://</c> URIs reach
/// when the options' transport is the default <see cref="SocketTransport"/>; a <c>new MemoryTransport()</c> passed as the
/// options' <c>Transport</c> keeps its names apart from every other test.
/// </para>
/// <para>
/// The streams behave like sockets: listening on a name that already has a listener fails with
/// <see cref="SocketError.AddressAlreadyInUse"/>; connecting to a name nobody listens on (or whose accept backlog is full)
/// fails with <see cref="SocketError.ConnectionRefused"/>, so reconnection and its backoff run as over TCP; closing the
/// listener refuses new connections and resets the ones not yet accepted. Disposing a stream ends the peer's reads (it
/// reads the end, 0 bytes) and makes the peer's later writes fail with an <see cref="IOException"/>; a stream whose
/// sending side was shut down (half-close) can still read. A writer that gets
/// <see cref="PauseWriterThreshold"/> bytes ahead of its reader waits until the reader catches up to
/// <see cref="ResumeWriterThreshold"/>.
/// </para>
/// </remarks>
public sealed class MemoryTransport : ITransport
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Listener> _listeners = new(StringComparer.Ordinal);

    /// <summary>The process-wide registry that <c>memory://</c> URIs use by default.</summary>
    public static MemoryTransport Shared { get; } = new();

    /// <summary>Bytes a writer may get ahead of its reader before its writes wait. Default 1 MiB.</summary>
    public long PauseWriterThreshold { get; init; } = 1024 * 1024;

    /// <summary>Bytes ahead at or below which a waiting writer resumes. Default 512 KiB.</summary>
    public long ResumeWriterThreshold { get; init; } = 512 * 1024;

    /// <summary>Connections a listener holds before they are accepted; one more is refused. Default 512.</summary>
    public int Backlog { get; init; } = 512;

    /// <summary>Whether a listener is open on <paramref name="name"/> in this registry.</summary>
    public bool IsListening(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (_gate)
        {
            return _listeners.ContainsKey(name);
        }
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException"><paramref name="endPoint"/> is not a <see cref="MemoryEndPoint"/>.</exception>
    /// <exception cref="SocketException">The name already has a listener (<see cref="SocketError.AddressAlreadyInUse"/>).</exception>
    public ValueTask<ITransportListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        var name = NameOf(endPoint);
        cancellationToken.ThrowIfCancellationRequested();
        if (PauseWriterThreshold <= 0 || ResumeWriterThreshold < 0 || ResumeWriterThreshold > PauseWriterThreshold || Backlog <= 0)
        {
            throw new InvalidOperationException("MemoryTransport needs PauseWriterThreshold > 0, 0 <= ResumeWriterThreshold <= PauseWriterThreshold and Backlog > 0.");
        }

        lock (_gate)
        {
            if (_listeners.ContainsKey(name))
            {
                throw new SocketException((int)SocketError.AddressAlreadyInUse, $"'{UhuraEndpoint.Format(endPoint)}' already has a listener.");
            }

            var listener = new Listener(this, (MemoryEndPoint)endPoint, Backlog);
            _listeners.Add(name, listener);
            return ValueTask.FromResult<ITransportListener>(listener);
        }
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException"><paramref name="endPoint"/> is not a <see cref="MemoryEndPoint"/>.</exception>
    /// <exception cref="SocketException">Nobody listens on the name, or its backlog is full (<see cref="SocketError.ConnectionRefused"/>).</exception>
    public ValueTask<Stream> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
    {
        var name = NameOf(endPoint);
        cancellationToken.ThrowIfCancellationRequested();
        var options = new PipeOptions(pauseWriterThreshold: PauseWriterThreshold, resumeWriterThreshold: ResumeWriterThreshold, useSynchronizationContext: false);
        var toServer = new Pipe(options);
        var toClient = new Pipe(options);
        var address = "memory://" + name;
        var client = new MemoryDuplexStream(toClient.Reader, toServer.Writer, address);
        var server = new MemoryDuplexStream(toServer.Reader, toClient.Writer, address);
        lock (_gate)
        {
            // Under the registry's lock: a listener being closed is unregistered first, so nothing is queued after its drain.
            if (_listeners.TryGetValue(name, out var listener) && listener.TryEnqueue(server))
            {
                return ValueTask.FromResult<Stream>(client);
            }
        }

        client.Dispose();
        server.Dispose();
        return ValueTask.FromException<Stream>(new SocketException((int)SocketError.ConnectionRefused, $"Nothing listens on '{UhuraEndpoint.Format(endPoint)}'."));
    }

    private static string NameOf(EndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        return endPoint is MemoryEndPoint memory
            ? memory.Name
            : throw new ArgumentException($"A MemoryTransport opens memory:// endpoints, not '{UhuraEndpoint.Format(endPoint)}'.", nameof(endPoint));
    }

    private void Remove(Listener listener)
    {
        lock (_gate)
        {
            if (_listeners.TryGetValue(listener.Name, out var current) && ReferenceEquals(current, listener))
            {
                _listeners.Remove(listener.Name);
            }
        }
    }

    private sealed class Listener(MemoryTransport owner, MemoryEndPoint endPoint, int backlog) : ITransportListener
    {
        private readonly Channel<MemoryDuplexStream> _pending = Channel.CreateBounded<MemoryDuplexStream>(
            new BoundedChannelOptions(backlog) { FullMode = BoundedChannelFullMode.Wait, SingleWriter = false, SingleReader = false });

        private int _disposed;

        public string Name => endPoint.Name;

        public EndPoint EndPoint => endPoint;

        public bool TryEnqueue(MemoryDuplexStream server) => _pending.Writer.TryWrite(server);

        public async ValueTask<Stream?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                while (await _pending.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    if (_pending.Reader.TryRead(out var stream))
                    {
                        return stream;
                    }
                }
            }
            catch (ChannelClosedException)
            {
            }

            return null;
        }

        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Remove(this);
                _pending.Writer.TryComplete();
                while (_pending.Reader.TryRead(out var notAccepted))
                {
                    notAccepted.Abort(new IOException($"'{UhuraEndpoint.Format(endPoint)}' closed before accepting the connection (connection reset)."));
                }
            }

            return ValueTask.CompletedTask;
        }
    }
}
