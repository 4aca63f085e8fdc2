namespace Rx.Uhura.Internal;

/// <summary>
/// The bound of a dispatcher's queue, kept by back-pressure rather than by refusing: producers count what they queue
/// (<see cref="Add"/>), the pump what it dispatched (<see cref="Release"/>), and a read loop that finds the room full
/// (<see cref="IsFull"/>) waits for <see cref="WhenSpaceAsync"/> before reading on. The one bound of both serial
/// dispatchers, the links' (<see cref="EventDispatcher"/>) and the mesh node's.
/// </summary>
internal sealed class DeliveryRoom
{
    private readonly int _capacity;
    private readonly int _resumeAt;
    private readonly Lock _gate = new();
    private TaskCompletionSource? _space;
    private int _count;

    /// <param name="capacity">How many deliveries may wait before <see cref="IsFull"/> (at least 1).</param>
    public DeliveryRoom(int capacity)
    {
        _capacity = Math.Max(1, capacity);
        _resumeAt = (_capacity - 1) / 2; // a waiting read loop goes on once half the room is free, not at the first slot
    }

    /// <summary>True when the queue holds its capacity or more: a read loop should wait before reading on.</summary>
    public bool IsFull => Volatile.Read(ref _count) >= _capacity;

    /// <summary>Counts <paramref name="queued"/> deliveries (before or after they are queued; the count may dip below zero meanwhile).</summary>
    public void Add(int queued) => Interlocked.Add(ref _count, queued);

    /// <summary>Takes <paramref name="dispatched"/> deliveries off the count, and lets a waiting read loop on once there is room.</summary>
    public void Release(int dispatched)
    {
        var left = Interlocked.Add(ref _count, -dispatched); // a full fence before reading _space (WhenSpaceAsync: the reverse)
        if (left <= _resumeAt && Volatile.Read(ref _space) is not null)
        {
            TaskCompletionSource? space;
            lock (_gate)
            {
                space = _space;
                _space = null;
            }

            space?.TrySetResult();
        }
    }

    /// <summary>
    /// Completes at once when the queue is not full; else once it is down to half its capacity (hysteresis: a read loop
    /// let on at the first free slot would read one buffer, find the queue full again and wait again, a thread hop per read).
    /// </summary>
    public Task WhenSpaceAsync()
    {
        lock (_gate)
        {
            if (!IsFull)
            {
                return Task.CompletedTask;
            }

            // Another read loop's wait is shared; one this method completed itself below is not reused (it would let
            // every later wait through while the queue is still full).
            var space = _space is { Task.IsCompleted: false } waiting ? waiting : new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Interlocked.Exchange(ref _space, space); // a full fence: a release either sees it or left room seen below
            if (Volatile.Read(ref _count) <= _resumeAt)
            {
                space.TrySetResult();
            }

            return space.Task;
        }
    }
}
