using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// Events a server sends from its <see cref="UhuraServer.Connections"/> handler, as the client connects, are never missed
/// by a client that subscribes before starting (issue #14, item 4). Real sockets, every wire.
/// </summary>
public abstract class EarlyEventTests : IAsyncLifetime
{
    /// <summary>Trials per pattern; two patterns, so twice this many connections per wire.</summary>
    private const int Trials = 1_000;

    private static readonly TimeSpan Missed = TimeSpan.FromSeconds(5);

    private readonly UhuraServer _server = new();
    private string? _dir;

    protected abstract WireProtocol Protocol { get; }

    protected virtual bool OverUnixSocket => false;

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(c => c.Post("hello", c.Id));
        if (OverUnixSocket)
        {
            _dir = Directory.CreateTempSubdirectory("uhura-early-").FullName;
            await _server.ListenAsync("unix://" + Path.Combine(_dir, "s.sock"));
        }
        else
        {
            await _server.ListenAsync("tcp://127.0.0.1:0");
        }
    }

    public async Task DisposeAsync()
    {
        await _server.CloseAsync().For();
        if (_dir is not null)
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private UhuraClientOptions Options => new() { Protocol = Protocol };

    [Fact]
    public async Task A_subscription_made_in_ConnectAsyncs_configure_sees_the_event_the_server_sent_on_connection_every_time()
    {
        var seen = 0;
        for (var trial = 0; trial < Trials; trial++)
        {
            Task<UhuraEvent>? hello = null;
            var client = await UhuraClient.ConnectAsync(_server.Uri!, Options, c => hello = c.Event("hello").FirstAsync().ToTask()).For();
            seen += await Arrives(hello!) ? 1 : 0;
            client.Dispose();
        }

        Assert.Equal(Trials, seen);
    }

    [Fact]
    public async Task A_client_created_subscribed_then_started_sees_the_event_the_server_sent_on_connection_every_time()
    {
        var seen = 0;
        for (var trial = 0; trial < Trials; trial++)
        {
            var client = UhuraClient.Create(_server.Uri!, Options);
            var hello = client.Event("hello").FirstAsync().ToTask();
            await client.StartAsync().For();
            seen += await Arrives(hello) ? 1 : 0;
            client.Dispose();
        }

        Assert.Equal(Trials, seen);
    }

    [Fact]
    public async Task Create_does_not_connect_until_StartAsync_and_a_send_made_before_is_delivered_after()
    {
        var pings = new System.Reactive.Subjects.ReplaySubject<Connection>();
        _server.Connections.Subscribe(pings);
        await using var client = UhuraClient.Create(_server.Uri!, Options);
        Assert.Equal(ConnectionStatus.Connecting, client.CurrentState.Status);
        Assert.Null(client.Connection);
        var sent = client.Send("early");
        Assert.False(sent.IsCompleted);
        var early = pings.SelectMany(c => c.Event("early")).FirstAsync().ToTask();
        await client.StartAsync().For();
        await sent.For();
        await early.For();
    }

    [Fact]
    public async Task A_created_client_never_started_closes_at_once_and_fails_what_it_queued()
    {
        // A clock that never moves: a Disconnect that waited for a connect that will never begin would never end.
        var frozen = new SchedulerTimeProvider(new Microsoft.Reactive.Testing.TestScheduler());
        var client = UhuraClient.Create(_server.Uri!, Options with { Connection = Options.Connection with { TimeProvider = frozen } });
        var sent = client.Send("never");
        var closing = client.Disconnect();
        await closing.For();
        await Assert.ThrowsAsync<ConnectionLostException>(() => sent.For());
        Assert.Equal(ConnectionStatus.Closed, client.CurrentState.Status);
        await client.StartAsync().ContinueWith(static _ => { }).For(); // ignored once closed; never hangs
    }

    private static async Task<bool> Arrives(Task task)
    {
        try
        {
            await task.WaitAsync(Missed);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}

public sealed class EarlyEventTestsOverNativeTcp : EarlyEventTests
{
    protected override WireProtocol Protocol => WireProtocol.Native;
}

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class EarlyEventTestsOverANativeUnixSocket : EarlyEventTests
{
    protected override WireProtocol Protocol => WireProtocol.Native;

    protected override bool OverUnixSocket => true;
}

public sealed class EarlyEventTestsOverTheNodeUhuraWire : EarlyEventTests
{
    protected override WireProtocol Protocol => WireProtocol.NodeUhura;
}
