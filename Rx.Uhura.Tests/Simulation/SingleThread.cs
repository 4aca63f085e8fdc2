namespace Rx.Uhura.Tests.Simulation;

/// <summary>
/// The simulation's world: a process whose thread pool has exactly one thread (started with
/// <c>DOTNET_PROCESSOR_COUNT=1</c>, then capped here), so every continuation, pump, read loop and write loop of the
/// library runs on it one after another, and no clock but the virtual one moves anything. The driver runs on that thread
/// too: whenever it waits for <see cref="QuiesceAsync"/>, everything the library queued runs to the point where it waits
/// for input, in an order fixed by the order of the queue, so a seed replays exactly.
/// </summary>
internal static class SingleThread
{
    /// <summary>Caps the thread pool at one worker; false when the runtime refuses (more than one processor visible).</summary>
    public static bool TryEnter(out string why)
    {
        if (Environment.ProcessorCount != 1)
        {
            why = $"the process sees {Environment.ProcessorCount} processors: start it with DOTNET_PROCESSOR_COUNT=1";
            return false;
        }

        if (!ThreadPool.SetMinThreads(1, 1) || !ThreadPool.SetMaxThreads(1, 1))
        {
            why = "the thread pool refused a cap of one thread";
            return false;
        }

        why = "";
        return true;
    }

    /// <summary>
    /// Completes once nothing is left in the thread pool's queues: every piece of work the library had queued (and the
    /// work that work queued) ran, and what is left waits for input (bytes, a timer of the virtual clock, a call).
    /// </summary>
    public static async Task QuiesceAsync()
    {
        for (var rounds = 0; ; rounds++)
        {
            await BehindEverythingQueued();
            if (ThreadPool.PendingWorkItemCount == 0)
            {
                return;
            }

            if (rounds > 50_000_000)
            {
                throw new InvalidOperationException("the library never stops queuing work: a livelock");
            }
        }
    }

    /// <summary>Lets the work queued so far run before the caller goes on (a work item at the end of the global queue).</summary>
    public static Task BehindEverythingQueued()
    {
        // Not Task.Yield: its continuation may be taken first again (a thread's local queue is last in, first out). An
        // item at the end of the global queue runs after the local queue drained and after every item queued before it;
        // completing the task there runs the awaiting code inline on the same thread.
        var turn = new TaskCompletionSource();
        ThreadPool.UnsafeQueueUserWorkItem(static t => t.SetResult(), turn, preferLocal: false);
        return turn.Task;
    }
}
