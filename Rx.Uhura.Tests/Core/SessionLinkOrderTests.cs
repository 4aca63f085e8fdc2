using System.Reactive.Linq;
using System.Reactive.Subjects;
using Microsoft.Extensions.Logging;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// A session's links on a server, one after the other: a link that ended by itself (its client hung up) may still be
/// delivering what it read, behind a slow subscriber. The session's next link delivers and acknowledges nothing before
/// that is done: events stay in order across the links, and a resend is acknowledged only once its first copy was
/// delivered. Node wire, written by hand, so the interleaving is fixed.
/// </summary>
public sealed class SessionLinkOrderTests : IAsyncLifetime
{
    private readonly LogMessages _log = new();
    private readonly UhuraServer _server;

    public SessionLinkOrderTests()
    {
        _server = new UhuraServer(new UhuraServerOptions { Connection = ConnectionOptions.Default with { LoggerFactory = _log } });
    }

    public Task InitializeAsync() => _server.ListenAsync("tcp://127.0.0.1:0");

    public async Task DisposeAsync() => await _server.CloseAsync().For();

    [Fact]
    public async Task A_resuming_link_waits_for_the_events_its_ended_predecessor_still_delivers()
    {
        var delivered = new List<string>();
        string[]? deliveredWhenSecondPublished = null;
        var published = new List<Connection>();
        var secondPublished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstIsBusy = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var release = new ManualResetEventSlim();
        _server.Connections.Subscribe(c =>
        {
            int link;
            lock (published)
            {
                published.Add(c);
                link = published.Count;
            }

            if (link == 2)
            {
                lock (delivered)
                {
                    deliveredWhenSecondPublished = [.. delivered];
                }

                secondPublished.TrySetResult();
            }

            c.Event("n").Subscribe(e =>
            {
                var n = e.Arg<int>(0);
                lock (delivered)
                {
                    delivered.Add($"{n} on link {link}");
                }

                if (n == 1)
                {
                    firstIsBusy.TrySetResult();
                    release.Wait(Wait.Timeout); // a slow subscriber: events 2 and 3 wait behind it
                }
            });
        });

        try
        {
            // Link 1 reads three events; its subscriber is busy with the first when the client hangs up.
            await using var first = await RawPeer.ConnectAsync(_server.EndPoint!);
            await first.HandshakeAsync();
            await first.ReadUntilAsync("\"connect\"");
            var sessionId = (string)first.Elements()[0][2]!;
            Connection link1;
            lock (published)
            {
                link1 = published[0];
            }

            await first.WriteAsync(Event(1) + Event(2) + Event(3));
            await firstIsBusy.Task.For();
            first.EndSending(); // read to the end by the server: 2 and 3 are queued behind 1, then the link ends by itself
            await Wait.First(link1.Disconnected);

            // Link 2 resumes the session and sends again what was not acknowledged, then a new event.
            await using var second = await RawPeer.ConnectAsync(_server.EndPoint!);
            await second.HandshakeAsync($"{{\"sessionID\":\"{sessionId}\"}}");
            await second.WriteAsync(Event(2) + Event(3) + Event(4));
            var waits = Wait.First(_log.Messages, m => m.Contains("waits until the session's earlier connections have delivered", StringComparison.Ordinal));
            await Task.WhenAny(waits, secondPublished.Task);
            lock (delivered)
            {
                // Not the session's link while the first one still delivers (it would deliver 4, and acknowledge 2 and 3, now).
                Assert.False(secondPublished.Task.IsCompleted, $"The second link was published while the first one still delivered; delivered then: {string.Join(", ", deliveredWhenSecondPublished ?? [])}");
            }

            await waits;

            release.Set();
            await second.ReadUntilAsync("ack::rxAAAAAAAAAA:4");
            var acks = second.Elements().Select(e => e is Newtonsoft.Json.Linq.JObject o ? (string?)o["args"]?[0] : null).Where(a => a?.StartsWith("ack::", StringComparison.Ordinal) == true);
            Assert.Equal(["ack::rxAAAAAAAAAA:2", "ack::rxAAAAAAAAAA:3", "ack::rxAAAAAAAAAA:4"], acks);
            lock (delivered)
            {
                Assert.Equal(["1 on link 1", "2 on link 1", "3 on link 1"], deliveredWhenSecondPublished!); // it acknowledges 2 and 3 only now
                Assert.Equal(["1 on link 1", "2 on link 1", "3 on link 1", "4 on link 2"], delivered);
            }
        }
        finally
        {
            release.Set();
        }
    }

    private static string Event(int n) => $"\n,\n{{\"args\":[\"n\",{n}],\"id\":\"rxAAAAAAAAAA:{n}\"}}";
}
