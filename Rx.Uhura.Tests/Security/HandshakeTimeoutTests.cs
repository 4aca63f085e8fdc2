using System.Reactive.Linq;
using Microsoft.Reactive.Testing;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Security;

public sealed class HandshakeTimeoutTests
{
    [Fact]
    public async Task A_client_that_connects_and_never_completes_the_handshake_is_closed_at_the_deadline()
    {
        var scheduler = new TestScheduler();
        await using var server = new UhuraServer(new UhuraServerOptions
        {
            Connection = ConnectionOptions.Default with { TimeProvider = new SchedulerTimeProvider(scheduler), HandshakeTimeout = TimeSpan.FromSeconds(10) },
        });
        var errors = server.Errors.Replay();
        using var _ = errors.Connect();
        await server.ListenAsync("tcp://127.0.0.1:0");

        await using var silent = await RawPeer.ConnectAsync(UhuraEndpoint.Parse(server.Uri!));
        await silent.WriteAsync("[\n"); // the first byte picks the Node wire; then nothing
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(5)).Where(_ => server.ActiveConnections.Count == 1));
        scheduler.AdvanceBy(TimeSpan.FromSeconds(9.9).Ticks);
        Assert.Single(server.ActiveConnections);

        scheduler.AdvanceBy(TimeSpan.FromSeconds(0.1).Ticks);
        var error = await Wait.First(errors);
        Assert.IsType<ProtocolException>(error);
        Assert.Contains("handshake within 10 s", error.Message);
        await silent.ReadToEndAsync();

        // A well-behaved client is not affected.
        await using var good = await UhuraClient.ConnectAsync(server.Uri!).For();
    }
}
