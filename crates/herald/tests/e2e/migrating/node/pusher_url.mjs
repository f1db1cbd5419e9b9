// The Node `pusher` SDK pointed at Herald by one URL, as the Ruby gem reads PUSHER_URL.
import Pusher from 'pusher';

const pusher = Pusher.forURL(process.env.PUSHER_URL);

export default pusher;
