using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using Rx.Uhura.Diagnostics;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Observability;

/// <summary>The <c>Rx.Uhura</c> activity source, read with an <see cref="ActivityListener"/> over real connections.</summary>
[Collection(ObservabilityCollection.Name)]
public sealed class TracingTests : IAsyncLifetime
{
    private readonly ActivityListener _listener;
    private readonly ConcurrentQueue<Activity> _stopped = new();
    private readonly Subject<Activity> _stops = new();
    private readonly List<IAsyncDisposable> _owned = [];

    public TracingTests()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == UhuraDiagnostics.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                _stopped.Enqueue(activity);
                lock (_stops)
                {
                    _stops.OnNext(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var owned in _owned)
        {
            await owned.DisposeAsync();
        }

        _listener.Dispose();
    }

    private async Task<UhuraServer> Server(UhuraServerOptions? options = null)
    {
        var server = new UhuraServer(options);
        _owned.Add(server);
        await server.ListenAsync("tcp://127.0.0.1:0");
        return server;
    }

    private Task<Activity> Stopped(string name, Func<Activity, bool>? predicate = null)
        => Wait.First(
            Observable.Create<Activity>(observer =>
            {
                lock (_stops) // the snapshot and the subscription together: a stop is seen at least once
                {
                    var live = _stops.Subscribe(observer);
                    foreach (var activity in _stopped)
                    {
                        observer.OnNext(activity);
                    }

                    return live;
                }
            }),
            a => a.OperationName == name && (predicate?.Invoke(a) ?? true));

    [Fact]
    public async Task Connect_and_handshake_activities_describe_the_link()
    {
        var server = await Server();
        Activity? inHandler = new Activity("sentinel");
        var handled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.Connections.Subscribe(c => c.Event("ping").Subscribe(_ =>
        {
            inHandler = Activity.Current;
            handled.TrySetResult();
        }));
        var client = await UhuraClient.ConnectAsync(server.Uri!).For();
        _owned.Add(client);
        await client.Send("ping").For();
        await handled.Task.For();

        var connect = await Stopped("uhura.connect");
        Assert.Equal(ActivityKind.Client, connect.Kind);
        Assert.Equal(server.Uri, connect.GetTagItem("uhura.endpoint"));
        Assert.Equal("native", connect.GetTagItem("uhura.protocol"));
        Assert.Equal(1, connect.GetTagItem("uhura.connect.attempt"));
        Assert.Equal("connected", connect.GetTagItem("uhura.outcome"));
        Assert.Equal(client.Session.Id, connect.GetTagItem("uhura.session.id"));
        Assert.Equal(false, connect.GetTagItem("uhura.session.resumed"));
        Assert.NotEqual(ActivityStatusCode.Error, connect.Status);

        var handshake = await Stopped("uhura.handshake");
        Assert.Equal(ActivityKind.Server, handshake.Kind);
        Assert.Equal("accepted", handshake.GetTagItem("uhura.outcome"));
        Assert.Equal("native", handshake.GetTagItem("uhura.protocol"));
        Assert.Equal(client.Session.Id, handshake.GetTagItem("uhura.session.id"));

        Assert.Null(inHandler); // a link's handlers never run inside a handshake's activity
        Assert.Equal(2, _stopped.Count); // nothing per event
    }

    [Fact]
    public async Task A_resumed_reconnect_is_a_second_connect_activity()
    {
        var server = await Server();
        var connections = new ReplaySubject<Connection>();
        server.Connections.Subscribe(connections);
        var client = UhuraClient.Connect(server.Uri!, new UhuraClientOptions { Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(50) } });
        _owned.Add(client);
        await client.WhenConnectedAsync().For();
        (await Wait.First(connections)).Dispose();

        var resumed = await Stopped("uhura.connect", a => Equals(a.GetTagItem("uhura.session.resumed"), true));
        Assert.Equal("connected", resumed.GetTagItem("uhura.outcome"));
        Assert.Equal(client.Session.Id, resumed.GetTagItem("uhura.session.presented"));
        var handshake = await Stopped("uhura.handshake", a => Equals(a.GetTagItem("uhura.session.resumed"), true));
        Assert.Equal(client.Session.Id, handshake.GetTagItem("uhura.session.id"));
    }

    [Fact]
    public async Task A_failed_attempt_is_an_error()
    {
        var client = UhuraClient.Connect(MetricsTests.UnusedEndpoint());
        _owned.Add(client);
        await Assert.ThrowsAnyAsync<UhuraException>(() => client.WhenConnectedAsync().For());
        var connect = await Stopped("uhura.connect");
        Assert.Equal("failed", connect.GetTagItem("uhura.outcome"));
        Assert.Equal(ActivityStatusCode.Error, connect.Status);
        Assert.NotNull(connect.GetTagItem("error.type"));
    }

    [Theory]
    [InlineData(WireProtocol.Native)]
    [InlineData(WireProtocol.NodeUhura)]
    public async Task A_refused_client_ends_both_activities_refused(WireProtocol protocol)
    {
        var server = await Server(new UhuraServerOptions { Authenticate = (_, _) => ValueTask.FromResult(AuthenticationResult.Refuse("no")) });
        var client = UhuraClient.Connect(server.Uri!, new UhuraClientOptions { Protocol = protocol, AuthToken = "bad" });
        _owned.Add(client);
        await Assert.ThrowsAsync<AuthenticationFailedException>(() => client.WhenConnectedAsync().For());
        var connect = await Stopped("uhura.connect");
        Assert.Equal("refused", connect.GetTagItem("uhura.outcome"));
        var handshake = await Stopped("uhura.handshake");
        Assert.Equal("refused", handshake.GetTagItem("uhura.outcome"));
        Assert.Equal(ActivityStatusCode.Error, handshake.Status);
    }
}
