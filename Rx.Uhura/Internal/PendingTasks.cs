using System.Collections.Concurrent;

namespace Rx.Uhura.Internal;

/// <summary>
/// Background tasks a flush waits for (saves started at a link's end, resume states): each is remembered until it
/// ends; <see cref="WhenAllAsync"/> waits for those still running, including any started while it waits.
/// </summary>
internal sealed class PendingTasks
{
    private readonly ConcurrentDictionary<Task, byte> _tasks = new();

    /// <summary>Remembers <paramref name="task"/> until it ends; returns it.</summary>
    public Task Track(Task task)
    {
        if (task.IsCompleted)
        {
            return task;
        }

        _tasks.TryAdd(task, 0);
        _ = task.ContinueWith(static (done, state) => ((ConcurrentDictionary<Task, byte>)state!).TryRemove(done, out _), _tasks, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return task;
    }

    /// <summary>
    /// Completes when no remembered task is running. A task that has completed counts as done even while it is still
    /// remembered: its removal is a continuation, which runs after the continuations registered before it, so a flush
    /// that such a continuation starts (a close awaiting that very save) would otherwise wait on it without end.
    /// </summary>
    public async Task WhenAllAsync()
    {
        while (true)
        {
            var running = _tasks.Keys.Where(static t => !t.IsCompleted).ToArray();
            if (running.Length == 0)
            {
                return;
            }

            await Task.WhenAll(running).ConfigureAwait(false);
        }
    }
}
