using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;

namespace Rx.Uhura.Tests.Core;

/// <summary>Absurd time spans in the options are refused where the options are given, with the option's name; the extremes that make sense work.</summary>
public sealed class OptionsRangeTests : IAsyncLifetime
{
    private readonly UhuraServer _server = new();

    public async Task InitializeAsync()
    {
        _server.Connections.Subscribe(c => c.Event("ping").Subscribe(e => c.Post("pong", e.Args[0])));
        await _server.ListenAsync("tcp://127.0.0.1:0");
    }

    public async Task DisposeAsync() => await _server.CloseAsync().For();

    public static TheoryData<string, Func<UhuraClientOptions>> Refused => new()
    {
        { "ConnectTimeout", () => new UhuraClientOptions { ConnectTimeout = TimeSpan.MaxValue } },
        { "ConnectTimeout", () => new UhuraClientOptions { ConnectTimeout = TimeSpan.Zero } },
        { "CloseTimeout", () => new UhuraClientOptions { Connection = ConnectionOptions.Default with { CloseTimeout = TimeSpan.FromDays(50) } } },
        { "CloseTimeout", () => new UhuraClientOptions { Connection = ConnectionOptions.Default with { CloseTimeout = TimeSpan.FromSeconds(-2) } } },
        { "HandshakeTimeout", () => new UhuraClientOptions { Connection = ConnectionOptions.Default with { HandshakeTimeout = TimeSpan.MaxValue } } },
        { "HeartbeatInterval", () => new UhuraClientOptions { Connection = ConnectionOptions.Default with { HeartbeatInterval = TimeSpan.FromSeconds(-1) } } },
        { "HeartbeatInterval", () => new UhuraClientOptions { Connection = ConnectionOptions.Default with { HeartbeatInterval = TimeSpan.Zero } } },
        { "HeartbeatInterval", () => new UhuraClientOptions { Connection = ConnectionOptions.Default with { HeartbeatInterval = TimeSpan.MaxValue } } },
        { "MaxDelay", () => new UhuraClientOptions { Reconnect = ReconnectOptions.Default with { MaxDelay = TimeSpan.MaxValue } } },
        { "MaxDelay", () => new UhuraClientOptions { Reconnect = ReconnectOptions.Default with { FirstDelay = TimeSpan.FromDays(2), MaxDelay = TimeSpan.FromDays(2) } } },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_time_span_no_timer_can_wait_is_refused_when_the_client_is_made(string option, Func<UhuraClientOptions> options)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => UhuraClient.Create(_server.Uri!, options()));
        Assert.Equal(option, error.ParamName);
    }

    [Fact]
    public async Task A_node_refuses_a_timer_period_no_timer_can_wait_and_takes_a_long_buffer_timeout()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new Rx.Uhura.Mesh.UhuraNode(Rx.Uhura.Mesh.UhuraNodeOptions.Default with { HeartbeatInterval = TimeSpan.FromDays(60) }));
        Assert.Equal("HeartbeatInterval", error.ParamName);
        await using var node = new Rx.Uhura.Mesh.UhuraNode(Rx.Uhura.Mesh.UhuraNodeOptions.Default with { BufferTimeout = TimeSpan.FromDays(365), PeerTimeout = Timeout.InfiniteTimeSpan });
    }

    [Fact]
    public async Task Infinite_connect_and_close_timeouts_and_a_day_long_backoff_work()
    {
        var options = new UhuraClientOptions
        {
            ConnectTimeout = Timeout.InfiniteTimeSpan,
            Connection = ConnectionOptions.Default with { CloseTimeout = Timeout.InfiniteTimeSpan, HandshakeTimeout = Timeout.InfiniteTimeSpan },
            Reconnect = ReconnectOptions.Default with { FirstDelay = TimeSpan.FromHours(1), MaxDelay = ReconnectOptions.LongestDelay },
        };
        var client = UhuraClient.Create(_server.Uri!, options);
        var pong = client.Event("pong").FirstAsync().ToTask();
        await client.StartAsync().For();
        await client.Send("ping", 7).For();
        Assert.Equal(7, (await pong.For()).Arg<int>(0));
        await client.Disconnect().For();
    }
}
