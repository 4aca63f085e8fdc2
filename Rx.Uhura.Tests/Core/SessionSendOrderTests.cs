using System.IO.Pipelines;
using System.Net;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// Native protocol, server side: the application's sends to a session reach the client in the order it made them,
/// wherever they waited while the client was between links. A link that ends hands what it had queued back to the
/// session's stream only after it began to refuse sends; a send made in between waits with the stream directly, ahead
/// of the older ones handed back after it. Seen once in a clean-clone CI run (seeded faults, seed 16: event 498 arrived
/// 465th); made deterministic here with two hooks, a session store whose stream lookup waits, and the ending link's
/// stream, whose disposal is the moment in between.
/// </summary>
public sealed class SessionSendOrderTests : IAsyncLifetime
{
    private readonly GatedStreamStore _store = new();
    private readonly HookedTransport _transport;
    private readonly UhuraServer _server;
    private readonly ReplaySubject<Connection> _connections = new();

    public SessionSendOrderTests()
    {
        _server = new UhuraServer(new UhuraServerOptions { SessionStore = _store });
        _transport = new HookedTransport(_server);
        _server.Connections.Subscribe(_connections);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _server.CloseAsync().For();

    [Fact]
    public async Task Sends_queued_on_a_link_that_ends_before_its_Welcome_stay_ahead_of_sends_made_while_it_ends()
    {
        await using var client = UhuraClient.Create("memory://order", new UhuraClientOptions
        {
            Transport = _transport,
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(20) },
        });
        var received = new List<int>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Event("s").Subscribe(e =>
        {
            lock (received)
            {
                received.Add(e.Arg<int>(0));
                if (received.Count == 20)
                {
                    all.TrySetResult();
                }
            }
        });
        await client.StartAsync().For();
        var first = await Wait.First(_connections);

        // The client's second link: the server makes it the session's live one, then waits in the store's stream lookup.
        var lookup = _store.HoldNextTake();
        client.Reconnect();
        await lookup.For();
        var second = _transport.ServerEnds[1];
        var secondLink = _server.ActiveConnections.Single(c => c != first);

        var sends = new List<Task>();
        for (var i = 0; i < 10; i++)
        {
            sends.Add(first.Send("s", i)); // the first link is gone: these follow the session, onto the second link's queue
        }

        // The second link ends before its Welcome. While it ends (its stream is disposed before it hands its queue
        // back), the application sends on: these wait with the session's stream first.
        second.OnDispose = () =>
        {
            for (var i = 10; i < 20; i++)
            {
                sends.Add(first.Send("s", i));
            }
        };
        secondLink.Dispose();
        Assert.Equal(20, sends.Count);
        _store.Release();

        await all.Task.For(); // the client's third link resumes the session and gets them all
        await Task.WhenAll(sends).For();
        lock (received)
        {
            Assert.Equal(Enumerable.Range(0, 20), received);
        }
    }

    /// <summary>The in-memory store, except that a stream lookup the test holds waits until the test releases it.</summary>
    private sealed class GatedStreamStore : ISessionStore, ISessionStreamStore
    {
        private readonly InMemorySessionStore _inner = new();
        private TaskCompletionSource? _entered;
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The next stream lookup waits for <see cref="Release"/>; the task completes when it begins.</summary>
        public Task HoldNextTake()
        {
            _entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _entered.Task;
        }

        public void Release() => _release.TrySetResult();

        public async ValueTask<SessionStreamState?> TakeStreamAsync(string sessionId, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Exchange(ref _entered, null) is { } entered)
            {
                entered.TrySetResult();
                await _release.Task.ConfigureAwait(false);
            }

            return await ((ISessionStreamStore)_inner).TakeStreamAsync(sessionId, cancellationToken).ConfigureAwait(false);
        }

        public ValueTask SaveStreamAsync(string sessionId, SessionStreamState state, CancellationToken cancellationToken = default)
            => ((ISessionStreamStore)_inner).SaveStreamAsync(sessionId, state, cancellationToken);

        public ValueTask<IReadOnlyDictionary<string, JToken>?> GetAsync(string sessionId, CancellationToken cancellationToken = default)
            => _inner.GetAsync(sessionId, cancellationToken);

        public ValueTask SetAsync(string sessionId, IReadOnlyDictionary<string, JToken> session, CancellationToken cancellationToken = default)
            => _inner.SetAsync(sessionId, session, cancellationToken);

        public ValueTask DestroyAsync(string sessionId, CancellationToken cancellationToken = default)
            => _inner.DestroyAsync(sessionId, cancellationToken);
    }

    /// <summary>Connects in memory straight to the server, keeping each link's server end so the test can hook its disposal.</summary>
    private sealed class HookedTransport(UhuraServer server) : ITransport
    {
        private readonly List<HookedStream> _serverEnds = [];

        public IReadOnlyList<HookedStream> ServerEnds
        {
            get
            {
                lock (_serverEnds)
                {
                    return [.. _serverEnds];
                }
            }
        }

        public ValueTask<ITransportListener> BindAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
            => throw new NotSupportedException();

        public ValueTask<Stream> ConnectAsync(EndPoint endPoint, CancellationToken cancellationToken = default)
        {
            var toServer = new Pipe();
            var toClient = new Pipe();
            var serverEnd = new HookedStream(new MemoryDuplexStream(toServer.Reader, toClient.Writer, "memory://order"));
            lock (_serverEnds)
            {
                _serverEnds.Add(serverEnd);
            }

            server.Accept(serverEnd);
            return ValueTask.FromResult<Stream>(new MemoryDuplexStream(toClient.Reader, toServer.Writer, "memory://order"));
        }
    }

    private sealed class HookedStream(Stream inner) : DelegatingStream(inner)
    {
        public Action? OnDispose { get; set; }

        protected override void Dispose(bool disposing)
        {
            if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                OnDispose?.Invoke();
            }

            base.Dispose(disposing);
        }

        private int _disposed;
    }
}
