using System.IO.Pipelines;
using System.Net;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
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
    private readonly LogMessages _log = new();
    private readonly HookedTransport _transport;
    private readonly UhuraServer _server;
    private readonly ReplaySubject<Connection> _connections = new();

    public SessionSendOrderTests()
    {
        _server = new UhuraServer(new UhuraServerOptions { SessionStore = _store, Connection = new ConnectionOptions { LoggerFactory = _log } });
        _transport = new HookedTransport(_server);
        _server.Connections.Subscribe(_connections);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _server.CloseAsync().For();

    [Fact]
    public async Task Sends_queued_on_a_link_that_ends_before_its_Welcome_stay_ahead_of_sends_made_while_it_ends()
    {
        var (client, received, all) = Client(20);
        await using var disposeClient = client;
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

        await all.For(); // the client's third link resumes the session and gets them all
        await Task.WhenAll(sends).For();
        lock (received)
        {
            Assert.Equal(Enumerable.Range(0, 20), received);
        }
    }

    [Fact]
    public async Task A_resume_state_this_server_saved_while_a_lookup_was_under_way_is_not_restored_over_what_it_holds()
    {
        // The second link's lookup takes the store's state (none yet) and waits; meanwhile that link ends before its
        // Welcome, hands its queue back, and the session's state is saved. The lookup then goes on, and the third link
        // takes that save. Keyed on one marker that the second lookup cleared, the third restored this server's own save
        // over memory: the held sends failed with ConnectionLostException while their restored copies were delivered
        // (seen once in a clean-clone CI run of the test above).
        var (client, received, all) = Client(10);
        await using var disposeClient = client;
        await client.StartAsync().For();
        var first = await Wait.First(_connections);

        var lookup = _store.HoldNextTakeAfterTaking();
        client.Reconnect();
        await lookup.For();
        var secondLink = _server.ActiveConnections.Single(c => c != first);
        var sends = Enumerable.Range(0, 10).Select(i => first.Send("s", i)).ToList(); // onto the second link's queue

        var saved = _store.NextSave();
        secondLink.Dispose();
        await saved.For(); // the session's state, with the ten held sends, is in the store
        _store.Release();

        await all.For();
        await Task.WhenAll(sends).For(); // acknowledged, not failed
        lock (received)
        {
            Assert.Equal(Enumerable.Range(0, 10), received);
        }
    }

    [Fact]
    public async Task A_link_superseded_before_its_Welcome_never_takes_the_sessions_held_sends_from_the_link_that_superseded_it()
    {
        // The second link is the session's live one, waiting in the store, when sends queue on it; the third supersedes
        // it (the second hands those sends back to the session) and waits in the store too, while more sends queue on
        // the third. The second goes on first: should it, ended, take the held sends (a hook then holds it there while
        // the third goes on and takes what is left), the third would number its own sends first and the held ones would
        // wait for yet another link. Seen once in CI (seeded faults, seed 16: 498 arrived 465th), when the two ran at once.
        var (client, received, all) = Client(20);
        await using var disposeClient = client;
        await client.StartAsync().For();
        var first = await Wait.First(_connections);

        var entered = _store.HoldTakes(2);
        client.Reconnect(); // the second link
        await entered[0].For();
        var second = _server.ActiveConnections.Single(c => c != first);
        var sends = new List<Task>();
        for (var i = 0; i < 10; i++)
        {
            sends.Add(first.Send("s", i)); // on the second link's queue
        }

        client.Reconnect(); // the third, which supersedes the second
        await entered[1].For();
        var third = _server.ActiveConnections.Single(c => c != first && c != second);
        for (var i = 10; i < 20; i++)
        {
            sends.Add(first.Send("s", i)); // on the third link's queue
        }

        var secondTook = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thirdTook = new ManualResetEventSlim();
        var secondLeftTheStream = _log.Messages.FirstAsync(m => m.Contains($"Connection {second.Id}: ended before its Welcome", StringComparison.Ordinal)).ToTask();
        Rx.Uhura.Internal.NativeStream.AfterTakeForTests = link =>
        {
            if (link == third)
            {
                thirdTook.Set();
            }
            else if (link == second)
            {
                secondTook.TrySetResult();
                thirdTook.Wait(TimeSpan.FromSeconds(5)); // a pool thread, briefly: the third goes on on another
            }
        };
        try
        {
            _store.Release(0); // the second goes on: it takes the stream, or leaves it and says so
            await Task.WhenAny(secondTook.Task, secondLeftTheStream).For();
            _store.Release(1); // then the third
            try
            {
                await all.For();
            }
            catch (TimeoutException)
            {
                lock (received)
                {
                    Assert.Fail($"only [{string.Join(",", received)}] arrived");
                }
            }
        }
        finally
        {
            Rx.Uhura.Internal.NativeStream.AfterTakeForTests = null;
            _store.Release();
        }

        await Task.WhenAll(sends).For();
        lock (received)
        {
            Assert.Equal(Enumerable.Range(0, 20), received);
        }
    }

    /// <summary>A client over the hooked transport that reconnects at once, and what its "s" subscriber received (complete at <paramref name="count"/>).</summary>
    private (UhuraClient Client, List<int> Received, Task All) Client(int count)
    {
        var client = UhuraClient.Create("memory://order", new UhuraClientOptions
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
                if (received.Count == count)
                {
                    all.TrySetResult();
                }
            }
        });
        return (client, received, all.Task);
    }

    /// <summary>The in-memory store, except that the stream lookups the test holds wait until the test releases them.</summary>
    private sealed class GatedStreamStore : ISessionStore, ISessionStreamStore
    {
        private readonly InMemorySessionStore _inner = new();
        private readonly Lock _lock = new();
        private readonly List<TaskCompletionSource> _entered = [];
        private readonly List<TaskCompletionSource> _releases = [];
        private int _held;
        private bool _holdAfterTake;
        private TaskCompletionSource? _nextSave;

        /// <summary>The next stream lookup waits for <see cref="Release"/>; the task completes when it begins.</summary>
        public Task HoldNextTake() => HoldTakes(1)[0];

        /// <summary>The next stream lookup takes what is stored, then waits for <see cref="Release"/> before returning it.</summary>
        public Task HoldNextTakeAfterTaking()
        {
            var entered = HoldTakes(1)[0];
            _holdAfterTake = true;
            return entered;
        }

        /// <summary>Completes once the next save of a resume state is in the store.</summary>
        public Task NextSave()
        {
            lock (_lock)
            {
                _nextSave = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return _nextSave.Task;
            }
        }

        /// <summary>The next <paramref name="count"/> stream lookups wait for <see cref="Release"/>; each task completes when one began.</summary>
        public Task[] HoldTakes(int count)
        {
            lock (_lock)
            {
                _entered.Clear();
                _releases.Clear();
                _held = count;
                for (var i = 0; i < count; i++)
                {
                    _entered.Add(new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                    _releases.Add(new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                }

                return [.. _entered.Select(e => e.Task)];
            }
        }

        /// <summary>Releases every held lookup.</summary>
        public void Release()
        {
            lock (_lock)
            {
                foreach (var release in _releases)
                {
                    release.TrySetResult();
                }
            }
        }

        /// <summary>Releases the held lookup that began <paramref name="index"/>th (from 0).</summary>
        public void Release(int index)
        {
            lock (_lock)
            {
                _releases[index].TrySetResult();
            }
        }

        public async ValueTask<SessionStreamState?> TakeStreamAsync(string sessionId, CancellationToken cancellationToken = default)
        {
            Task? wait = null;
            TaskCompletionSource? entered = null;
            var after = false;
            lock (_lock)
            {
                if (_held > 0)
                {
                    var index = _entered.Count - _held--;
                    entered = _entered[index];
                    wait = _releases[index].Task;
                    after = _holdAfterTake;
                    _holdAfterTake = false;
                }
            }

            if (after)
            {
                var taken = await ((ISessionStreamStore)_inner).TakeStreamAsync(sessionId, cancellationToken).ConfigureAwait(false);
                entered!.TrySetResult();
                await wait!.ConfigureAwait(false);
                return taken;
            }

            if (wait is not null)
            {
                entered!.TrySetResult();
                await wait.ConfigureAwait(false);
            }

            return await ((ISessionStreamStore)_inner).TakeStreamAsync(sessionId, cancellationToken).ConfigureAwait(false);
        }

        public async ValueTask SaveStreamAsync(string sessionId, SessionStreamState state, CancellationToken cancellationToken = default)
        {
            await ((ISessionStreamStore)_inner).SaveStreamAsync(sessionId, state, cancellationToken).ConfigureAwait(false);
            TaskCompletionSource? saved;
            lock (_lock)
            {
                saved = _nextSave;
                _nextSave = null;
            }

            saved?.TrySetResult();
        }

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
        private readonly List<DisposalHookStream> _serverEnds = [];

        public IReadOnlyList<DisposalHookStream> ServerEnds
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
            var serverEnd = new DisposalHookStream(new MemoryDuplexStream(toServer.Reader, toClient.Writer, "memory://order"));
            lock (_serverEnds)
            {
                _serverEnds.Add(serverEnd);
            }

            server.Accept(serverEnd);
            return ValueTask.FromResult<Stream>(new MemoryDuplexStream(toClient.Reader, toServer.Writer, "memory://order"));
        }
    }
}
