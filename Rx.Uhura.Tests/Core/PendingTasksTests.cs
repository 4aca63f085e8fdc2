using Rx.Uhura.Internal;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// The saves a server's close waits for. Found by a full test run that spun for good in a server's close (PostgreSQL
/// store): the close was itself a continuation of the last save, which ran before that save's own removal from the
/// pending set, so the flush found a completed task still pending and awaited it again, synchronously, without end.
/// </summary>
public sealed class PendingTasksTests
{
    [Fact]
    public async Task A_flush_started_by_a_continuation_of_a_tracked_task_completes()
    {
        var pending = new PendingTasks();
        var save = new TaskCompletionSource(); // continuations run on the completing thread, as a store's may
        Task? flush = null;

        // Registered before the tracker's own continuation: runs first, on the thread that completes the save.
        _ = save.Task.ContinueWith(_ => flush = pending.WhenAllAsync(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _ = pending.Track(save.Task);

        var completing = Task.Run(save.SetResult);
        await completing.For(); // the old flush spun here, on the completing thread, for ever
        await flush!.For();
    }

    [Fact]
    public async Task A_flush_waits_for_running_tasks_and_for_those_started_while_it_waits()
    {
        var pending = new PendingTasks();
        var first = new TaskCompletionSource(); // the flush's continuation runs inside SetResult: checked right after it
        var second = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = pending.Track(first.Task);
        var flush = pending.WhenAllAsync();
        Assert.False(flush.IsCompleted);

        _ = pending.Track(second.Task);
        first.SetResult();
        Assert.False(flush.IsCompleted); // the second, started while it waited, is still running

        second.SetResult();
        await flush.For();
        Assert.True(pending.WhenAllAsync().IsCompleted); // nothing left
    }

    [Fact]
    public async Task A_failed_task_fails_the_flush_that_waited_for_it_and_no_later_one()
    {
        var pending = new PendingTasks();
        var save = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = pending.Track(save.Task);
        var flush = pending.WhenAllAsync();
        save.SetException(new InvalidOperationException("the store failed"));

        await Assert.ThrowsAsync<InvalidOperationException>(() => flush.For());
        await pending.WhenAllAsync().For();
    }
}
