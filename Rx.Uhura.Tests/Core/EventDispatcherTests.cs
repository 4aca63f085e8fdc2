using System.Reactive.Linq;
using Microsoft.Extensions.Logging.Abstractions;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Tests.Core;

/// <summary>The serial dispatcher's own rules, below the links: completion waits for an open read batch, and a pump never spins while it does.</summary>
public sealed class EventDispatcherTests
{
    [Fact]
    public async Task Completion_waits_for_an_open_read_batch_without_spinning_and_follows_its_end()
    {
        var dispatcher = new EventDispatcher(16, NullLogger.Instance);
        Assert.True(dispatcher.EnterBatch()); // a read loop in a batch (it may await inside it)
        dispatcher.Complete();
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(1)).Where(_ => dispatcher.IdleChecks >= 1)); // the pump ran, found nothing, and a writer still in

        // Time passes while the batch stays open (a store call, say). A pump that waited for the writer by looping would
        // count its checks by the thousand meanwhile.
        for (var i = 0; i < 20; i++)
        {
            await Task.Run(static () => { });
        }

        Assert.Equal(1, dispatcher.IdleChecks);
        Assert.False(dispatcher.Completion.IsCompleted); // not before the batch ends: it may still queue
        Assert.False(dispatcher.EnterBatch()); // a batch begun after Complete queues nothing

        dispatcher.ExitBatch();
        await dispatcher.Completion.For();
    }
}
