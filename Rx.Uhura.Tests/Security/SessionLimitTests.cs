using System.Reactive.Linq;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Security;

public abstract class SessionLimitTests : IAsyncLifetime
{
    private readonly UhuraServer _server = new(new UhuraServerOptions
    {
        Connection = ConnectionOptions.Default with { MaxSessionKeys = 5, MaxSessionBytes = 1024 },
    });

    protected abstract WireProtocol Protocol { get; }

    public Task InitializeAsync() => _server.ListenAsync("tcp://127.0.0.1:0");

    public async Task DisposeAsync() => await _server.CloseAsync().For();

    private Task<UhuraClient> ConnectAsync(IReadOnlyDictionary<string, JToken>? session = null)
        => UhuraClient.ConnectAsync(_server.Uri!, new UhuraClientOptions { Protocol = Protocol, InitialSession = session }).For();

    [Theory]
    [InlineData("keys")]
    [InlineData("bytes")]
    public async Task A_session_change_past_the_limits_closes_only_that_connection_and_is_not_stored(string limit)
    {
        await using var bystander = await ConnectAsync();
        await using var greedy = await ConnectAsync();
        var error = Wait.First(_server.Errors.OfType<ProtocolException>());
        var closed = Wait.First(greedy.State, s => s.Status == ConnectionStatus.Closed);
        var id = greedy.Session.Id!;
        if (limit == "keys")
        {
            greedy.Session.Set(new Dictionary<string, object?> { ["a"] = 1, ["b"] = 2, ["c"] = 3, ["d"] = 4, ["e"] = 5 }); // with sessionID: 6 keys
        }
        else
        {
            greedy.Session.Set("blob", new string('x', 2000));
        }

        Assert.Contains(limit == "keys" ? "MaxSessionKeys" : "MaxSessionBytes", (await error).Message);
        await closed;
        var stored = await _server.SessionStore.GetAsync(id);
        Assert.True(stored is null || (!stored.ContainsKey("e") && !stored.ContainsKey("blob")));

        // The other client goes on: its own change within the limits reaches the store.
        bystander.Session.Set("fine", 1);
        await Wait.First(System.Reactive.Linq.Observable.Interval(TimeSpan.FromMilliseconds(10))
            .SelectMany(_ => _server.SessionStore.GetAsync(bystander.Session.Id!).AsTask())
            .Where(s => s is not null && s.ContainsKey("fine")));
        Assert.Equal(ConnectionStatus.Connected, bystander.CurrentState.Status);
    }

    [Fact]
    public async Task An_oversized_session_presented_at_the_handshake_is_refused()
    {
        var error = Wait.First(_server.Errors.OfType<ProtocolException>());
        await Assert.ThrowsAnyAsync<UhuraException>(() => ConnectAsync(new Dictionary<string, JToken> { ["blob"] = new string('y', 4096) }));
        Assert.Contains("MaxSessionBytes", (await error).Message);
    }
}

public sealed class SessionLimitTestsOverTheNativeProtocol : SessionLimitTests
{
    protected override WireProtocol Protocol => WireProtocol.Native;
}

public sealed class SessionLimitTestsOverTheNodeUhuraWire : SessionLimitTests
{
    protected override WireProtocol Protocol => WireProtocol.NodeUhura;
}
